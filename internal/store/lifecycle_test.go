package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// TestRolloutNumbersCountPerApp checks that each app numbers its own
// rollouts from 1 while IDs count every app's.
func TestRolloutNumbersCountPerApp(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	seedApp(t, s, "web", 2)
	seedApp(t, s, "api", 1)
	var got []Rollout
	for _, app := range []string{"web", "api", "web", "api", "web"} {
		update(t, s, func(tx *Tx) error {
			ro, err := tx.CreateRollout(Rollout{App: app, To: 1, Strategy: "initial", Phase: PhasePromoted, Number: 99})
			got = append(got, ro)
			return err
		})
	}
	want := []int{1, 1, 2, 2, 3}
	for i, ro := range got {
		if ro.Number != want[i] || ro.ID != int64(i+1) {
			t.Errorf("rollout %d of %s: id %d number %d; want id %d number %d", i, ro.App, ro.ID, ro.Number, i+1, want[i])
		}
		stored, err := s.Rollout(ctx, ro.ID)
		if err != nil || stored.Number != ro.Number {
			t.Errorf("stored rollout %d: %+v, %v; want number %d", ro.ID, stored, err, ro.Number)
		}
	}
}

// TestMigrationNumbersExistingRollouts opens a database of schema 1 with
// rollouts of two apps interleaved and checks that the upgrade numbers
// them per app, in the order they were made, and keeps the events.
func TestMigrationNumbersExistingRollouts(t *testing.T) {
	path := dbPath(t)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := migrateStep(ctx, raw, 0); err != nil {
		t.Fatal(err)
	}
	ts := timeText(time.Now())
	for _, app := range []string{"lt", "web"} {
		if _, err := raw.Exec(`INSERT INTO apps (name, listen, created, updated) VALUES (?, '127.0.0.1:1', ?, ?)`, app, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	for _, app := range []string{"web", "lt", "web", "web", "lt"} {
		if _, err := raw.Exec(`INSERT INTO rollouts (app, from_rev, to_rev, strategy, phase, step, trigger, reason, started, updated, ended)
			VALUES (?, 0, 1, 'initial', 'promoted', 0, '', '', ?, ?, ?)`, app, ts, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	s := openAt(t, path)
	want := map[int64]int{1: 1, 2: 1, 3: 2, 4: 3, 5: 2}
	for id, n := range want {
		ro, err := s.Rollout(ctx, id)
		if err != nil || ro.Number != n {
			t.Errorf("rollout %d after the upgrade: number %d, %v; want %d", id, ro.Number, err, n)
		}
	}
	var next Rollout
	update(t, s, func(tx *Tx) error {
		var err error
		next, err = tx.CreateRollout(Rollout{App: "lt", To: 1, Strategy: "initial", Phase: PhasePromoted})
		return err
	})
	if next.ID != 6 || next.Number != 3 {
		t.Fatalf("the next rollout of lt: id %d number %d; want 6 and 3", next.ID, next.Number)
	}
}

// TestDeleteAppKeepsHistory checks that a deleted app leaves the list of
// apps but keeps its revisions and rollouts, and that putting it again
// brings it back with its numbering going on.
func TestDeleteAppKeepsHistory(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	seedApp(t, s, "web", 2)
	seedApp(t, s, "api", 1)
	var active Rollout
	update(t, s, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web", Listen: "127.0.0.1:8080", Stable: 1}); err != nil {
			return err
		}
		var err error
		active, err = tx.CreateRollout(Rollout{App: "web", From: 1, To: 2, Strategy: "canary", Phase: PhaseProgressing})
		return err
	})
	err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteApp("web", time.Time{}) })
	if !errors.Is(err, ErrActiveRollout) {
		t.Fatalf("DeleteApp during a rollout = %v; want ErrActiveRollout", err)
	}
	active.Phase = PhaseAborted
	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	update(t, s, func(tx *Tx) error {
		if err := tx.UpdateRollout(active); err != nil {
			return err
		}
		return tx.DeleteApp("web", when)
	})

	web, err := s.App(ctx, "web")
	if err != nil || web.Deleted == nil || !web.Deleted.Equal(when) || web.Stable != 0 || web.Latest != 2 {
		t.Fatalf("deleted web = %+v, %v; want deleted at %v, no stable, latest 2", web, err, when)
	}
	apps, _ := s.Apps(ctx)
	if len(apps) != 1 || apps[0].Name != "api" {
		t.Fatalf("Apps after the delete = %+v; want only api", apps)
	}
	if revs, _ := s.Revisions(ctx, "web"); len(revs) != 2 {
		t.Fatalf("revisions of the deleted app: %d; want 2 kept", len(revs))
	}
	if ros, _ := s.Rollouts(ctx, "web", 0); len(ros) != 1 {
		t.Fatalf("rollouts of the deleted app: %d; want 1 kept", len(ros))
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteApp("web", time.Time{}) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting again = %v; want ErrNotFound", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteApp("nope", time.Time{}) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing app = %v; want ErrNotFound", err)
	}

	var rev Revision
	var ro Rollout
	update(t, s, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web", Listen: "127.0.0.1:9090"}); err != nil {
			return err
		}
		var err error
		if rev, err = tx.CreateRevision(sampleRevision("web", 7)); err != nil {
			return err
		}
		ro, err = tx.CreateRollout(Rollout{App: "web", To: rev.Number, Strategy: "initial", Phase: PhaseProgressing})
		return err
	})
	web, _ = s.App(ctx, "web")
	if web.Deleted != nil || web.Listen != "127.0.0.1:9090" || rev.Number != 3 || ro.Number != 2 {
		t.Fatalf("web again = %+v with revision %d and rollout number %d; want live, revision 3, rollout 2", web, rev.Number, ro.Number)
	}
	if apps, _ := s.Apps(ctx); len(apps) != 2 {
		t.Fatalf("Apps after putting web again = %+v", apps)
	}
}
