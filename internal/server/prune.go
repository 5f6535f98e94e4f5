package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
// revisions of app the store no longer has. A folder a replica still
// writes to (writing lists their log files) is left, and busy reports it:
// a pruned revision's replicas may still be stopping, and an undo hands
// running replicas to a new revision number while they keep their folder.
// It returns the folders removed.
func pruneLogs(ctx context.Context, st *store.Store, logs, app string, writing []string) (removed []string, busy bool, err error) {
	entries, err := os.ReadDir(filepath.Join(logs, app))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	revs, err := st.Revisions(ctx, app)
	if err != nil {
		return nil, false, err
	}
	kept := map[string]bool{}
	for _, r := range revs {
		kept[strconv.Itoa(r.Number)] = true
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err != nil || n < 1 || !e.IsDir() || kept[e.Name()] {
			continue // not a revision's folder, or a kept revision's
		}
		dir := filepath.Join(logs, app, e.Name())
		if inUse(dir, writing) {
			busy = true
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, busy, err
		}
		removed = append(removed, dir)
	}
	return removed, busy, nil
}

// logSweeper prunes the log folders of an app's pruned revisions off the
// controller's loop, and keeps trying (every second) while a replica
// still writes to one.
type logSweeper struct {
	st   *store.Store
	dir  string
	log  *slog.Logger
	wake chan struct{}
	// writing returns the log files an app's replicas write to.
	writing func(app string) []string

	mu   sync.Mutex
	apps map[string]bool // apps with folders to prune
}

func newLogSweeper(st *store.Store, dir string, log *slog.Logger, writing func(app string) []string) *logSweeper {
	return &logSweeper{st: st, dir: dir, log: log, writing: writing, wake: make(chan struct{}, 1), apps: map[string]bool{}}
}

// prune asks for app's folders to be pruned; it does not wait.
func (s *logSweeper) prune(app string) {
	s.mu.Lock()
	s.apps[app] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run prunes what is asked until ctx ends.
func (s *logSweeper) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-tick.C:
		}
		s.mu.Lock()
		apps := slices.Collect(maps.Keys(s.apps))
		s.mu.Unlock()
		for _, app := range apps {
			_, busy, err := pruneLogs(ctx, s.st, s.dir, app, s.writing(app))
			if err != nil && ctx.Err() == nil {
				s.log.Warn("prune logs", "app", app, "err", err)
			}
			if !busy && err == nil {
				s.mu.Lock()
				delete(s.apps, app)
				s.mu.Unlock()
			}
		}
	}
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
		removed, _, err := pruneLogs(ctx, st, logs, a.Name(), nil)
		if err != nil {
			log.Warn("prune logs", "app", a.Name(), "err", err)
		}
		if len(removed) > 0 {
			log.Info("removed the logs of pruned revisions", "app", a.Name(), "folders", len(removed))
		}
	}
}
