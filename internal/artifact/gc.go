package artifact

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// staleTemp is how old a leftover temporary file must be before GC removes
// it; younger ones may belong to a Put in progress.
const staleTemp = time.Hour

// GC removes every stored copy whose digest is not in keep and returns the
// digests it removed, sorted. Temporary files left by an interrupted Put are
// removed once they are an hour old. GC does not coordinate with Put: a
// caller must compute keep and run GC while no apply that is about to
// record new digests is in progress.
func (s *Store) GC(keep map[string]bool) ([]string, error) {
	dir := filepath.Join(s.dir, algo)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	var removed []string
	for _, e := range entries {
		digest := prefix + e.Name()
		if _, err := parseDigest(digest); err != nil || keep[digest] {
			continue // not ours to judge, or still wanted
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("gc: remove %s: %w", digest, err)
		}
		removed = append(removed, digest)
	}
	sort.Strings(removed)
	if err := s.removeStaleTemps(time.Now().Add(-staleTemp)); err != nil {
		return removed, err
	}
	return removed, nil
}

func (s *Store) removeStaleTemps(before time.Time) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(before) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errNotExist(err) {
			return fmt.Errorf("gc: remove leftover %s: %w", e.Name(), err)
		}
	}
	return nil
}
