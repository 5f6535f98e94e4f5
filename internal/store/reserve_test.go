package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes for the test (the tests run as
// root); a test that cannot reproduce a full disk fails, it never skips.
func smallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d-byte tmpfs on %s (the full-disk tests need root): %v\n%s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the filesystem is full.
func fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, size := range []int{64 << 10, 4096, 1} {
		for {
			if _, err := f.Write(buf[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// rollbackShaped writes what the controller writes when it rolls a
// rollout back: the rollout's new state, the app, and three events with
// evidence, of about the sizes they have in production.
func rollbackShaped(ro Rollout, i int) func(tx *Tx) error {
	return func(tx *Tx) error {
		ro.Phase = PhaseRolledBack
		ro.Trigger, ro.Reason = "analysis", fmt.Sprintf("check errors failed (%d)", i)
		ro.State = json.RawMessage(fmt.Sprintf(`{"phase":"rolled-back","i":%d,"pad":%q}`, i, strings.Repeat("s", 1500)))
		ro.Ended = nil
		if err := tx.UpdateRollout(ro); err != nil {
			return err
		}
		if err := tx.PutApp(App{Name: ro.App, Listen: "127.0.0.1:8080", Stable: 1}); err != nil {
			return err
		}
		for _, typ := range []string{"analysis.verdict", "rollout.rolled-back", "traffic.weight"} {
			if _, err := tx.AppendEvent(Event{App: ro.App, Rollout: ro.ID, Revision: 2, Type: typ,
				Message: fmt.Sprintf("%s %d", typ, i), Data: json.RawMessage(fmt.Sprintf(`{"evidence":%q}`, strings.Repeat("e", 1200)))}); err != nil {
				return err
			}
		}
		return nil
	}
}

// seedRollout makes an app with two revisions and a promoted rollout the
// rollbacks can rewrite (a promoted rollout may be rolled back again and
// again as far as the store is concerned).
func seedRollout(t testing.TB, s *Store) Rollout {
	t.Helper()
	var ro Rollout
	if err := s.Update(context.Background(), func(tx *Tx) error {
		if err := tx.PutApp(App{Name: "web", Listen: "127.0.0.1:8080"}); err != nil {
			return err
		}
		for i := range 2 {
			if _, err := tx.CreateRevision(sampleRevision("web", i)); err != nil {
				return err
			}
		}
		var err error
		ro, err = tx.CreateRollout(Rollout{App: "web", From: 1, To: 2, Strategy: "canary", Phase: PhasePromoted, Trigger: "apply"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ro
}

func TestAFullDiskGivesUpTheReserveSoTheRollbackIsRecorded(t *testing.T) {
	ctx := context.Background()
	disk := smallDisk(t, 16<<20)
	dir := filepath.Join(disk, "data")
	s, err := OpenDir(dir, DirOptions{Reserve: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h := s.Health(); !strings.Contains(h.Reserve, "1 MiB in place") {
		t.Fatalf("reserve %q", h.Reserve)
	}
	ro := seedRollout(t, s)
	filler := filepath.Join(disk, "fill")
	fill(t, filler)

	if err := s.Update(ctx, rollbackShaped(ro, 0)); err != nil {
		t.Fatalf("the rollback with a full disk and a reserve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ReserveFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the reserve is still there: %v", err)
	}
	evs, _ := s.Events(ctx, EventQuery{})
	var released *Event
	for i, e := range evs {
		if e.Type == "store.reserve-released" {
			released = &evs[i]
		}
	}
	if released == nil || !strings.Contains(released.Message, "the disk holding state.db is full") {
		t.Fatalf("no store.reserve-released event among %d", len(evs))
	}
	if released.Seq > evs[len(evs)-1].Seq-3 {
		t.Fatalf("the release is recorded after the rollback it made room for: %+v", *released)
	}
	// How many more the reserve allows, until the disk is full again.
	n := 1
	for ; n < 10000; n++ {
		if err := s.Update(ctx, rollbackShaped(ro, n)); err != nil {
			if !IsFull(err) {
				t.Fatalf("rollback %d: %v, want the disk full", n, err)
			}
			break
		}
	}
	t.Logf("a 1 MiB reserve recorded %d rollback-shaped transactions", n)
	h := s.Health()
	if h.OK() || h.FailedWrites != 1 || !strings.Contains(h.WriteError, "full") || !strings.Contains(h.Reserve, "released") {
		t.Fatalf("health with the disk full again %+v", h)
	}

	// Room returns: Maintain takes the reserve back and says so.
	reserveCheck = 10 * time.Millisecond
	t.Cleanup(func() { reserveCheck = 5 * time.Second })
	mctx, stop := context.WithCancel(ctx)
	maintained := make(chan error)
	go func() { maintained <- s.Maintain(mctx) }()
	os.Remove(filler)
	after, _ := s.LastSeq(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, _ = s.Events(ctx, EventQuery{AfterSeq: after})
		if len(evs) > 0 && evs[0].Type == "store.reserve-restored" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reserve was not taken back: %d events after %d", len(evs), after)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-maintained; err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ReserveFile)); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("the reserve file: %v", err)
	}
	if err := s.Update(ctx, rollbackShaped(ro, n)); err != nil || !s.Health().OK() {
		t.Fatalf("a write after room returned: %v, health %+v", err, s.Health())
	}
}
