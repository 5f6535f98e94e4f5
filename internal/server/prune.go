package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lastgood/lastgood/internal/store"
)

// stateFileMode is the mode of state.db and its -wal and -shm files: they
// hold every revision's manifest with its real env values.
const stateFileMode = 0o600

// privateState narrows the state database's files to stateFileMode.
// SQLite creates its -wal and -shm files with the database file's mode,
// so once the database is narrowed, those it creates later are too.
func privateState(db string) error {
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Chmod(p, stateFileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state database: %w", err)
		}
	}
	return nil
}

// pruneLogs removes the log folders <data>/logs/<app>/<rev>/ of the
// revisions of app the store no longer has. A folder a running replica
// still writes to (writing lists their log files) is left for a later prune (an undo hands running
// replicas to a new revision number; they keep their folder). It returns
// the folders removed.
func pruneLogs(ctx context.Context, st *store.Store, logs, app string, writing []string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(logs, app))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	revs, err := st.Revisions(ctx, app)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, r := range revs {
		kept[strconv.Itoa(r.Number)] = true
	}
	var removed []string
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err != nil || n < 1 || !e.IsDir() || kept[e.Name()] {
			continue // not a revision's folder, or a kept revision's
		}
		dir := filepath.Join(logs, app, e.Name())
		if inUse(dir, writing) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

// inUse reports whether one of the log files being written is in dir.
func inUse(dir string, writing []string) bool {
	for _, p := range writing {
		if strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// pruneAllLogs is pruneLogs for every app folder under logs, at start:
// before any replica runs, so every folder of a pruned revision goes.
func pruneAllLogs(ctx context.Context, st *store.Store, logs string, log *slog.Logger) {
	apps, err := os.ReadDir(logs)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("prune logs", "err", err)
		}
		return
	}
	for _, a := range apps {
		if !a.IsDir() {
			continue
		}
		removed, err := pruneLogs(ctx, st, logs, a.Name(), nil)
		if err != nil {
			log.Warn("prune logs", "app", a.Name(), "err", err)
		}
		if len(removed) > 0 {
			log.Info("removed the logs of pruned revisions", "app", a.Name(), "folders", len(removed))
		}
	}
}
