package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// The full-disk tests put the data directory on a small tmpfs of its own
// (the tests run as root, as lastgood does in production here) and fill it
// with a file, as a log-spamming process would.

// smallDisk mounts a tmpfs of size bytes and returns its path; it is
// unmounted when the test ends. Mounting must work: a test that cannot
// reproduce the fault fails rather than skips.
func smallDisk(t *testing.T, size int64) string {
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

// fillDisk writes the file at path until the filesystem has no space left,
// and returns how many bytes it wrote.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(chunk)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
	// The last pages: what a 64 KiB write could not take.
	for _, size := range []int{4096, 512, 1} {
		for {
			w, err := f.Write(chunk[:size])
			n += int64(w)
			if err != nil {
				break
			}
		}
	}
	return n
}

// hook is a webhook check whose verdict the test sets.
type hook struct {
	srv     *httptest.Server
	verdict atomic.Value // string
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.verdict.Store("inconclusive")
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"verdict": %q, "reason": "the test says %s"}`, h.verdict.Load(), h.verdict.Load())
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) check() string {
	return "    - name: external\n      webhook: {url: " + h.srv.URL + "/judge}\n"
}

// offCanary waits until n requests in a row are answered by revision 1.
func offCanary(t *testing.T, d time.Duration, addr string, n int) {
	t.Helper()
	row := 0
	waitFor(t, d, fmt.Sprintf("%d requests in a row answered by revision 1", n), func() bool {
		rev, err := revisionAt(addr)
		switch {
		case err == nil && rev == 1:
			row++
		default:
			row = 0
		}
		return row >= n
	})
}

// startCanaryOnFullDisk releases revision 1 of an app on a fresh data
// directory on a small disk, starts clients, applies a canary of revision
// 2 that fails half its requests and is judged by h, waits until the
// canary takes traffic, then fills the disk.
func startCanaryOnFullDisk(t *testing.T, cfg Config, h *hook) (*instance, *app, *clients, int64, string) {
	t.Helper()
	disk := smallDisk(t, 64<<20)
	cfg.DataDir = filepath.Join(disk, "data")
	in := startWith(t, cfg)
	a := newApp(t, "full")
	in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
	cl := startClients(t, a.listen, 4)
	res, err := in.c.ApplyFile(context.Background(), a.manifestWith(t, 2,
		"canary: {steps: [{setWeight: 20}, {analyze: {for: 1m}}]}", "FAULT_ERROR_RATE: '0.5'", analysisOf(h.check())))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the canary to take traffic", func() bool {
		byRev, _ := cl.snapshot()
		return byRev[2] > 20
	})
	fill := filepath.Join(disk, "fill")
	fillDisk(t, fill)
	return in, a, cl, res.Rollout, fill
}

// TestFullDiskRollbackSwitchesTrafficBeforeItIsRecorded: a canary fails
// while the data disk is full and lastgood keeps no reserve: its traffic
// must go back to the stable revision at once, though the store cannot
// record the decision; once space returns, the rollback is recorded at
// the time it was decided, with how long the record waited, and the
// incident does not count the wait as detection or rollback time.
func TestFullDiskRollbackSwitchesTrafficBeforeItIsRecorded(t *testing.T) {
	h := newHook(t)
	in, a, cl, rollout, fill := startCanaryOnFullDisk(t, Config{Reserve: -1}, h)
	h.verdict.Store("fail")
	offCanary(t, 30*time.Second, a.listen, 50)

	st, err := in.c.App(context.Background(), a.name)
	if err != nil {
		t.Fatal(err)
	}
	u := st.Unrecorded
	if u == nil || u.Applied == nil || u.Revision != 1 || u.Phase != strategy.RolledBack || !strings.Contains(u.Error, "full") {
		t.Fatalf("status with the disk full: unrecorded %+v, rollout %s", u, st.Rollout.Phase)
	}
	if st.Rollout.ID != rollout || st.Rollout.Phase == string(strategy.RolledBack) {
		t.Fatalf("the rollback is recorded although the disk is full: %+v", st.Rollout.Rollout)
	}
	if code, body := in.readyz(); code != 503 || !strings.Contains(body, "the store cannot write") {
		t.Fatalf("readyz with the disk full: %d %q", code, body)
	}
	if _, err := in.c.Action(context.Background(), a.name, "promote", api.ActionRequest{}); err == nil {
		t.Fatal("promote of a rollout whose rollback waits to be recorded was accepted")
	}

	time.Sleep(500 * time.Millisecond) // the record waits: this is what the incident must not blame on detection
	freed := time.Now()
	os.Remove(fill)
	st = in.waitRollout(t, a.name, rollout)
	cl.stop()
	wantRollBack(t, st, strategy.TriggerAnalysis, "check external failed")

	evs, err := in.c.Events(context.Background(), a.name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var back, late *store.Event
	for i, e := range evs {
		switch e.Type {
		case "rollout.rolled-back":
			back = &evs[i]
		case controller.TypeRecordedLate:
			late = &evs[i]
		}
	}
	if back == nil || late == nil || late.Seq < back.Seq {
		t.Fatalf("events: rolled back %+v, recorded late %+v", back, late)
	}
	// The record may land a little before the test frees the disk: SQLite
	// can reuse pages its WAL already holds, with no new block (seen once
	// in CI). What must hold is that it was dated when decided, while
	// the disk was full, and written after that (the status above showed
	// it unrecorded while full).
	if !back.Time.Before(freed) || late.Time.Before(back.Time) {
		t.Fatalf("the rollback is dated %s and recorded at %s; the disk was freed at %s", back.Time, late.Time, freed)
	}
	if !strings.Contains(late.Message, "traffic went back to revision 1 at") || !strings.Contains(late.Message, "before the store could record it") {
		t.Fatalf("recorded-late event says %q", late.Message)
	}

	var inc *incident.Incident
	waitFor(t, 60*time.Second, "the incident bundle", func() bool {
		inc, err = incident.Load(filepath.Join(in.dir, "incidents"), incident.ID(a.name, st.Rollout.Number))
		return err == nil
	})
	f := inc.Figures
	if f.RecordDelayMs == nil || *f.RecordDelayMs < freed.Sub(back.Time).Milliseconds() {
		t.Fatalf("incident figures %+v: want the record delay, at least %s", f, freed.Sub(back.Time))
	}
	if f.DecidingLook == nil || !f.DecidingLook.Before(freed) || !inc.Decided.Before(freed) {
		t.Fatalf("incident: deciding look %v, decided %v; the disk was freed at %s", f.DecidingLook, inc.Decided, freed)
	}
	if f.TimeToRollbackMs == nil || *f.TimeToRollbackMs >= *f.RecordDelayMs {
		t.Fatalf("incident blames the record delay on the rollback: %+v", f)
	}
	if len(inc.Warnings) == 0 || !strings.Contains(strings.Join(inc.Warnings, "\n"), "recorded late") {
		t.Fatalf("incident warnings %q", inc.Warnings)
	}
	if inc.Chain == nil || inc.Chain.Seq < late.Seq {
		t.Fatalf("incident chain head %+v, want at least event %d", inc.Chain, late.Seq)
	}
}

// TestFullDiskReserveRecordsTheRollback: with the default reserve, the
// rollback of a canary on a full disk is recorded at once, the reserve
// given up for it; once space returns the reserve comes back.
func TestFullDiskReserveRecordsTheRollback(t *testing.T) {
	h := newHook(t)
	in, a, cl, rollout, fill := startCanaryOnFullDisk(t, Config{}, h)
	h.verdict.Store("fail")
	st := in.waitRollout(t, a.name, rollout) // the disk is still full
	cl.stop()
	wantRollBack(t, st, strategy.TriggerAnalysis, "check external failed")
	evs, err := in.c.Events(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(evs, "store.reserve-released") || hasEvent(evs, controller.TypeRecordedLate) {
		t.Fatalf("want the reserve given up and the rollback recorded at once; events %v", types(evs))
	}
	if _, err := os.Stat(filepath.Join(in.dir, store.ReserveFile)); !os.IsNotExist(err) {
		t.Fatalf("the reserve file is still there: %v", err)
	}
	os.Remove(fill)
	waitFor(t, 30*time.Second, "the reserve to be taken back", func() bool {
		evs, _ := in.c.Events(context.Background(), "", 0)
		return hasEvent(evs, "store.reserve-restored")
	})
	if fi, err := os.Stat(filepath.Join(in.dir, store.ReserveFile)); err != nil || fi.Size() != DefaultReserve {
		t.Fatalf("the reserve file after room returned: %v", err)
	}
}

func types(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
