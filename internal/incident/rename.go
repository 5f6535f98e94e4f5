package incident

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// renameOldBundles gives the bundles written under the old ids
// (<app>-<global rollout id>) their id by the app's rollout number, once:
// the folder is renamed and incident.json and the reports are written
// again with the new id and the old one in Aliases, so the old id still
// finds the bundle. Bundles are renamed in the order of their rollouts,
// which never takes a name still in use: a rollout's number is never
// above its global id. A bundle whose rollout the store does not know is
// left as it is. Problems are logged; none stops the recorder.
func (r *Recorder) renameOldBundles(ctx context.Context) {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.cfg.Log.Error("rename incidents", "err", err)
		}
		return
	}
	type rename struct {
		folder string
		inc    *Incident
		id     string
	}
	var todo []rename
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		inc, err := load(r.cfg.Dir, e.Name())
		if err != nil {
			continue // not a bundle, or one List reports
		}
		ro, err := r.cfg.Store.Rollout(ctx, inc.Rollout)
		if err != nil || ro.App != inc.App || ro.Number == 0 {
			continue
		}
		if id := ID(inc.App, ro.Number); e.Name() != id || inc.ID != id {
			todo = append(todo, rename{e.Name(), inc, id})
		}
	}
	slices.SortFunc(todo, func(a, b rename) int { return int(a.inc.Rollout - b.inc.Rollout) })
	for _, t := range todo {
		if err := r.renameBundle(t.folder, t.inc, t.id); err != nil {
			r.cfg.Log.Error("rename incident", "from", t.folder, "to", t.id, "err", err)
			continue
		}
		r.cfg.Log.Info("incident renamed", "from", t.folder, "to", t.id)
	}
}

// renameBundle moves the bundle in folder to id and writes it again with
// its old names as aliases.
func (r *Recorder) renameBundle(folder string, inc *Incident, id string) error {
	if folder != id {
		target := filepath.Join(r.cfg.Dir, id)
		if _, err := os.Stat(target); err == nil {
			return fmt.Errorf("%s already exists", target)
		}
		if err := os.Rename(filepath.Join(r.cfg.Dir, folder), target); err != nil {
			return err
		}
	}
	for _, old := range []string{folder, inc.ID} {
		if old != id && !slices.Contains(inc.Aliases, old) {
			inc.Aliases = append(inc.Aliases, old)
		}
	}
	inc.ID = id
	return write(r.cfg.Dir, inc)
}

// idOf is the incident id of a rollout, read from the store; when the
// rollout cannot be read, a description that still names it.
func (r *Recorder) idOf(ctx context.Context, app string, rollout int64) string {
	ro, err := r.cfg.Store.Rollout(ctx, rollout)
	if err != nil || ro.Number == 0 {
		return fmt.Sprintf("of %s rollout #%d", app, rollout)
	}
	return ID(app, ro.Number)
}
