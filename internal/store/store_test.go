package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenConfiguresDurableWAL(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"user_version": strconv.Itoa(len(migrations)),
	} {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := dbPath(t)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open = %v; want a schema-too-new error", err)
	}
}

func TestApps(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, err := s.App(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("App(missing) = %v; want ErrNotFound", err)
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web", Listen: "127.0.0.1:8080", Latest: 42}); err != nil {
			return err
		}
		return tx.PutApp(App{Name: "api", Listen: "127.0.0.1:9090"})
	})
	web, err := s.App(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if web.Listen != "127.0.0.1:8080" || web.Latest != 0 || web.Stable != 0 || web.Created.IsZero() {
		t.Fatalf("web = %+v", web)
	}
	apps, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" {
		t.Fatalf("Apps = %+v; want api, web", apps)
	}

	seedApp(t, s, "web", 2)
	update(t, s, func(tx *Tx) error {
		return tx.PutApp(App{Name: "web", Listen: "127.0.0.1:8181", Stable: 2})
	})
	web2, _ := s.App(ctx, "web")
	if web2.Listen != "127.0.0.1:8181" || web2.Stable != 2 || web2.Latest != 2 {
		t.Fatalf("after update web = %+v", web2)
	}
	if !web2.Created.Equal(web.Created) || web2.Updated.Before(web.Updated) {
		t.Fatalf("Created changed or Updated went back: %+v then %+v", web, web2)
	}
	err = s.Update(ctx, func(tx *Tx) error { return tx.PutApp(App{Name: "web", Stable: 9}) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("PutApp(stable=9) = %v; want ErrNotFound", err)
	}
	err = s.Update(ctx, func(tx *Tx) error { return tx.PutApp(App{}) })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutApp(no name) = %v; want ErrInvalid", err)
	}
}

func TestRevisions(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	seedApp(t, s, "web", 0)
	var created []Revision
	update(t, s, func(tx *Tx) error {
		for i := range 3 {
			rev := sampleRevision("web", i)
			rev.Number = 77 // ignored
			r, err := tx.CreateRevision(rev)
			if err != nil {
				return err
			}
			created = append(created, r)
		}
		// An undo copies revision 1's content.
		undo := sampleRevision("web", 0)
		undo.Origin, undo.CopyOf, undo.Artifacts = OriginUndo, 1, nil
		r, err := tx.CreateRevision(undo)
		created = append(created, r)
		return err
	})
	for i, r := range created {
		if r.Number != i+1 {
			t.Fatalf("revision %d got number %d", i, r.Number)
		}
	}
	app, _ := s.App(ctx, "web")
	if app.Latest != 4 {
		t.Fatalf("Latest = %d, want 4", app.Latest)
	}
	got, err := s.Revision(ctx, "web", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, created[1]) {
		t.Fatalf("Revision(2) = %+v\nwant %+v", got, created[1])
	}
	all, err := s.Revisions(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, created) {
		t.Fatalf("Revisions = %+v\nwant %+v", all, created)
	}
	byDigest, err := s.RevisionByDigest(ctx, "web", created[0].Digest)
	if err != nil || byDigest.Number != 4 || byDigest.CopyOf != 1 {
		t.Fatalf("RevisionByDigest = %+v, %v; want the newest, the undo copy (4)", byDigest, err)
	}
	if _, err := s.RevisionByDigest(ctx, "web", "sha256:none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevisionByDigest(unknown) = %v", err)
	}
	if _, err := s.Revision(ctx, "web", 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Revision(9) = %v", err)
	}
}

func TestCreateRevisionRejectsBadInput(t *testing.T) {
	s := openTemp(t)
	seedApp(t, s, "web", 0)
	ctx := context.Background()
	create := func(rev Revision) error {
		return s.Update(ctx, func(tx *Tx) error { _, err := tx.CreateRevision(rev); return err })
	}
	if err := create(sampleRevision("nope", 0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("revision of a missing app: %v; want ErrNotFound", err)
	}
	bad := sampleRevision("web", 0)
	bad.Manifest = json.RawMessage(`{"name":`)
	bad.Origin = "magic"
	err := create(bad)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "manifest") || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad revision: %v; want ErrInvalid naming manifest and origin", err)
	}
	undo := sampleRevision("web", 0)
	undo.Origin = OriginUndo
	if err := create(undo); !errors.Is(err, ErrInvalid) {
		t.Errorf("undo without CopyOf: %v; want ErrInvalid", err)
	}
	if app, _ := s.App(ctx, "web"); app.Latest != 0 {
		t.Fatalf("failed creates moved Latest to %d", app.Latest)
	}
}

func TestDeleteRevisions(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	seedApp(t, s, "web", 5)
	update(t, s, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web", Listen: "x", Stable: 3}); err != nil {
			return err
		}
		_, err := tx.CreateRollout(Rollout{App: "web", From: 3, To: 5, Strategy: "canary", Phase: PhaseProgressing})
		return err
	})
	del := func(ns ...int) error {
		return s.Update(ctx, func(tx *Tx) error { return tx.DeleteRevisions("web", ns) })
	}
	if err := del(1, 3); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "stable") {
		t.Fatalf("deleting the stable revision: %v; want ErrInUse", err)
	}
	if err := del(5); !errors.Is(err, ErrInUse) {
		t.Fatalf("deleting a rollout's target: %v; want ErrInUse", err)
	}
	if err := del(1, 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing revision: %v; want ErrNotFound", err)
	}
	if _, err := s.Revision(ctx, "web", 1); err != nil {
		t.Fatalf("a failed delete removed revision 1: %v", err)
	}
	if err := del(1, 2); err != nil {
		t.Fatal(err)
	}
	revs, _ := s.Revisions(ctx, "web")
	if len(revs) != 3 || revs[0].Number != 3 {
		t.Fatalf("after pruning: %d revisions starting at %d", len(revs), revs[0].Number)
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteRevisions("web", []int{4}); err != nil {
			return err
		}
		r, err := tx.CreateRevision(sampleRevision("web", 9))
		if err == nil && r.Number != 6 {
			t.Errorf("after pruning, next revision is %d, want 6 (never reused)", r.Number)
		}
		return err
	})
}

func TestRollouts(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	seedApp(t, s, "web", 3)
	seedApp(t, s, "api", 1)
	var first, second Rollout
	update(t, s, func(tx *Tx) error {
		var err error
		first, err = tx.CreateRollout(Rollout{App: "web", From: 1, To: 2, Strategy: "canary",
			Phase: PhaseProgressing, State: json.RawMessage(`{"weight":5}`), Trigger: "apply"})
		return err
	})
	if first.ID == 0 || first.Started.IsZero() || first.Ended != nil || first.Done() {
		t.Fatalf("created rollout = %+v", first)
	}
	got, err := s.Rollout(ctx, first.ID)
	if err != nil || !reflect.DeepEqual(got, first) {
		t.Fatalf("Rollout = %+v, %v\nwant %+v", got, err, first)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.CreateRollout(Rollout{App: "web", From: 1, To: 3, Phase: PhaseProgressing})
		return err
	})
	if !errors.Is(err, ErrActiveRollout) {
		t.Fatalf("second unfinished rollout: %v; want ErrActiveRollout", err)
	}
	active, err := s.ActiveRollout(ctx, "web")
	if err != nil || active.ID != first.ID {
		t.Fatalf("ActiveRollout = %+v, %v", active, err)
	}

	first.Phase, first.Step, first.State, first.Reason = PhaseRolledBack, 2, json.RawMessage(`{"weight":0}`), "errors check failed"
	update(t, s, func(tx *Tx) error { return tx.UpdateRollout(first) })
	done, _ := s.Rollout(ctx, first.ID)
	if !done.Done() || done.Ended == nil || done.Step != 2 || done.Reason != "errors check failed" || string(done.State) != `{"weight":0}` {
		t.Fatalf("after rollback: %+v", done)
	}
	if _, err := s.ActiveRollout(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ActiveRollout after the end = %v; want ErrNotFound", err)
	}
	done.Phase = PhaseProgressing
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateRollout(done) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reopening an ended rollout: %v; want ErrInvalid", err)
	}
	done.Phase = PhasePromoted
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateRollout(done) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("promoting a rolled-back rollout: %v; want ErrInvalid", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateRollout(Rollout{ID: 999, Phase: PhasePaused}) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating a missing rollout: %v; want ErrNotFound", err)
	}

	update(t, s, func(tx *Tx) error {
		var err error
		if second, err = tx.CreateRollout(Rollout{App: "web", From: 1, To: 3, Strategy: "blueGreen", Phase: PhasePaused}); err != nil {
			return err
		}
		_, err = tx.CreateRollout(Rollout{App: "api", To: 1, Strategy: "rolling", Phase: PhaseProgressing})
		return err
	})
	list, _ := s.Rollouts(ctx, "web", 0)
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Fatalf("Rollouts(web) = %+v; want newest first", list)
	}
	if list, _ := s.Rollouts(ctx, "web", 1); len(list) != 1 || list[0].ID != second.ID {
		t.Fatalf("Rollouts(web, 1) = %+v", list)
	}
	if list, _ := s.Rollouts(ctx, "", 0); len(list) != 3 {
		t.Fatalf("Rollouts(all) has %d, want 3", len(list))
	}
	unfinished, _ := s.UnfinishedRollouts(ctx)
	if len(unfinished) != 2 || unfinished[0].App != "web" || unfinished[1].App != "api" {
		t.Fatalf("UnfinishedRollouts = %+v", unfinished)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateRollout(Rollout{ID: second.ID, Phase: "sideways"}) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown phase: %v; want ErrInvalid", err)
	}
	// A promoted rollout can still be rolled back (inside its rollback
	// window), and nothing else.
	second.Phase = PhasePromoted
	update(t, s, func(tx *Tx) error { return tx.UpdateRollout(second) })
	second.Phase = PhaseAborted
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateRollout(second) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("aborting a promoted rollout: %v; want ErrInvalid", err)
	}
	second.Phase = PhaseRolledBack
	update(t, s, func(tx *Tx) error { return tx.UpdateRollout(second) })
	if got, _ := s.Rollout(ctx, second.ID); got.Phase != PhaseRolledBack {
		t.Fatalf("window rollback not stored: %+v", got)
	}
}

func TestUpdateErrorLeavesNothing(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	events := s.Subscribe(t.Context())
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web"}); err != nil {
			return err
		}
		if _, err := tx.CreateRevision(sampleRevision("web", 0)); err != nil {
			return err
		}
		if _, err := tx.CreateRollout(Rollout{App: "web", To: 1, Phase: PhaseProgressing}); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(Event{App: "web", Type: "apply"}); err != nil {
			return err
		}
		if _, err := tx.App(ctx, "web"); err != nil { // the transaction sees its own writes
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v; want fn's error", err)
	}
	func() {
		defer func() { recover() }()
		s.Update(ctx, func(tx *Tx) error {
			tx.PutApp(App{Name: "panicky"})
			panic("in fn")
		})
	}()
	if apps, _ := s.Apps(ctx); len(apps) != 0 {
		t.Fatalf("apps survived a failed update: %+v", apps)
	}
	if ros, _ := s.Rollouts(ctx, "", 0); len(ros) != 0 {
		t.Fatalf("rollouts survived: %+v", ros)
	}
	if evs, _ := s.Events(ctx, EventQuery{}); len(evs) != 0 {
		t.Fatalf("events survived: %+v", evs)
	}
	select {
	case e := <-events:
		t.Fatalf("a rolled-back event was published: %+v", e)
	default:
	}
	// The chain continues from the genesis hash, as if nothing happened.
	evs := appendEvents(t, s, "web", 1)
	if evs[0].Seq != 1 || evs[0].PrevHash != genesisHash {
		t.Fatalf("first event after rollbacks = %+v", evs[0])
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := dbPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seedApp(t, s, "web", 2)
	var ro Rollout
	update(t, s, func(tx *Tx) error {
		var err error
		ro, err = tx.CreateRollout(Rollout{App: "web", From: 1, To: 2, Strategy: "canary", Phase: PhasePaused, Step: 3})
		return err
	})
	evs := appendEvents(t, s, "web", 5)
	wantApps, _ := s.Apps(ctx)
	wantRevs, _ := s.Revisions(ctx, "web")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	apps, _ := s.Apps(ctx)
	revs, _ := s.Revisions(ctx, "web")
	gotRo, _ := s.ActiveRollout(ctx, "web")
	gotEvs, _ := s.Events(ctx, EventQuery{})
	if !reflect.DeepEqual(apps, wantApps) || !reflect.DeepEqual(revs, wantRevs) ||
		!reflect.DeepEqual(gotRo, ro) || !reflect.DeepEqual(gotEvs, evs) {
		t.Fatalf("after reopen:\napps %+v\nrevs %+v\nrollout %+v\nevents %+v", apps, revs, gotRo, gotEvs)
	}
	more := appendEvents(t, s, "web", 1)
	if more[0].Seq != 6 || more[0].PrevHash != evs[4].Hash {
		t.Fatalf("event after reopen = %+v; want seq 6 linked to %s", more[0], evs[4].Hash)
	}
}

func TestEvents(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	evs := appendEvents(t, s, "web", 6)
	at := time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	update(t, s, func(tx *Tx) error {
		e, err := tx.AppendEvent(Event{App: "api", Type: "promoted", Time: at})
		if err == nil && (!e.Time.Equal(at) || e.Time.Location() != time.UTC) {
			t.Errorf("given time came back as %v", e.Time)
		}
		return err
	})
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Time.IsZero() || string(e.Data) != `{"i":`+string(rune('1'+i))+`}` {
			t.Fatalf("event %d = %+v", i, e)
		}
		if i > 0 && e.PrevHash != evs[i-1].Hash {
			t.Fatalf("event %d does not link to the one before", e.Seq)
		}
	}
	all, _ := s.Events(ctx, EventQuery{})
	if len(all) != 7 || !reflect.DeepEqual(all[:6], evs) {
		t.Fatalf("Events(all) = %+v", all)
	}
	for _, tc := range []struct {
		q    EventQuery
		want []int64
	}{
		{EventQuery{App: "api"}, []int64{7}},
		{EventQuery{App: "web", Rollout: 2}, []int64{2, 5}},
		{EventQuery{AfterSeq: 4}, []int64{5, 6, 7}},
		{EventQuery{App: "web", AfterSeq: 1, Limit: 2}, []int64{2, 3}},
	} {
		got, err := s.Events(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if !reflect.DeepEqual(seqs, tc.want) {
			t.Errorf("Events(%+v) = %v, want %v", tc.q, seqs, tc.want)
		}
	}
	err := s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendEvent(Event{Type: "x", Data: json.RawMessage(`{nope`)})
		return err
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad data: %v; want ErrInvalid", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { _, err := tx.AppendEvent(Event{}); return err }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no type: %v; want ErrInvalid", err)
	}
}

func TestFollowDeliversEveryEventOnceInOrder(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	appendN := func(n int) {
		update(t, s, func(tx *Tx) error {
			for range n {
				if _, err := tx.AppendEvent(Event{Time: time.Now(), Type: "test", Message: "x"}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	appendN(3) // already in the log; the first is skipped by after
	var mu sync.Mutex
	var seen []int64
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, 1, func(e Event) {
			mu.Lock()
			seen = append(seen, e.Seq)
			mu.Unlock()
		})
	}()
	appendN(5)
	appendN(subscriberBuffer + 100) // overflows the subscription: Follow catches up
	appendN(2)
	want := int64(3 + 5 + subscriberBuffer + 100 + 2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if int64(n) >= want-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow returned %v after its context ended", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if int64(len(seen)) != want-1 {
		t.Fatalf("saw %d events, want %d", len(seen), want-1)
	}
	for i, seq := range seen {
		if seq != int64(i)+2 {
			t.Fatalf("event %d has seq %d: not every event once, in order", i, seq)
		}
	}
}

func TestLastSeq(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if seq, err := s.LastSeq(ctx); err != nil || seq != 0 {
		t.Fatalf("empty log: %d, %v", seq, err)
	}
	for i := 1; i <= 3; i++ {
		update(t, s, func(tx *Tx) error {
			_, err := tx.AppendEvent(Event{Time: time.Now(), Type: "test", Message: "x"})
			return err
		})
		if seq, err := s.LastSeq(ctx); err != nil || seq != int64(i) {
			t.Fatalf("after %d events: %d, %v", i, seq, err)
		}
	}
}
