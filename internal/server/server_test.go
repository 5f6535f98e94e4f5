package server

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

const blueGreen = "blueGreen: {autoPromote: true}"

func TestBlueGreenSwitchFailsNoRequest(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "bg")
	if st := in.applyWait(t, a.manifest(t, 2, blueGreen, "V: one")); st.Rollout.Phase != "promoted" {
		t.Fatalf("first release %s", st.Rollout.Phase)
	}
	cl := startClients(t, a.listen, 4)
	time.Sleep(200 * time.Millisecond)
	// No checks: with the default ones the window would hold 10% of the
	// traffic back on revision 1 (rollback.holdback), and this test is
	// about a whole switch.
	st := in.applyWait(t, a.manifestWith(t, 2, blueGreen, "V: two", "analysis: {checks: []}\n"))
	if st.Rollout.Phase != "promoted" || st.Stable != 2 {
		t.Fatalf("rollout %s, stable %d", st.Rollout.Phase, st.Stable)
	}
	time.Sleep(200 * time.Millisecond)
	cl.stop()
	byRev, failed := cl.snapshot()
	if len(failed) > 0 {
		t.Fatalf("%d requests failed during the switch, e.g. %v", len(failed), failed[0])
	}
	if byRev[1] == 0 || byRev[2] == 0 {
		t.Fatalf("answers by revision %v: want both before and after the switch", byRev)
	}
	// Revision 1 stays warm for the window, with no traffic.
	warm := 0
	for _, r := range st.Replicas {
		if r.Revision == 1 && !r.Stopping {
			warm++
		}
	}
	if warm != 2 {
		t.Fatalf("%d replicas of revision 1 warm after promotion, want 2: %+v", warm, st.Replicas)
	}
	if rev, _ := get(t, a.listen); rev != 2 {
		t.Fatalf("served by revision %d after promotion", rev)
	}
}

func TestNeverReadyIsRolledBackWithNoFailedRequest(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "never")
	in.applyWait(t, a.manifest(t, 2, blueGreen, ""))
	cl := startClients(t, a.listen, 2)
	st := in.applyWait(t, a.manifest(t, 2, blueGreen, `FAULT_NEVER_READY: "1"`))
	cl.stop()
	r := st.Rollout
	if r.Phase != "rolled-back" || r.Trigger != strategy.TriggerProgressDeadline || st.Stable != 1 {
		t.Fatalf("rollout %s by %q, stable %d", r.Phase, r.Trigger, st.Stable)
	}
	byRev, failed := cl.snapshot()
	if len(failed) > 0 || byRev[2] != 0 || byRev[1] == 0 {
		t.Fatalf("answers %v, failed %v: want all on revision 1", byRev, failed)
	}
	waitFor(t, 10*time.Second, "revision 2 replicas to stop", func() bool {
		st, _ := in.c.App(context.Background(), "never")
		for _, r := range st.Replicas {
			if r.Revision == 2 {
				return false
			}
		}
		return true
	})
}

func TestRollingUpdateKeepsServing(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "roll")
	rolling := "rolling: {maxSurge: 1, maxUnavailable: 0}"
	in.applyWait(t, a.manifest(t, 3, rolling, "V: one"))
	cl := startClients(t, a.listen, 4)
	st := in.applyWait(t, a.manifest(t, 3, rolling, "V: two"))
	time.Sleep(100 * time.Millisecond)
	cl.stop()
	if st.Rollout.Phase != "promoted" {
		t.Fatalf("rolling update %s: %s", st.Rollout.Phase, st.Rollout.Reason)
	}
	byRev, failed := cl.snapshot()
	if len(failed) > 0 {
		t.Fatalf("%d requests failed during the rolling update, e.g. %s", len(failed), failed[0])
	}
	if byRev[2] == 0 {
		t.Fatalf("no request answered by revision 2: %v", byRev)
	}
	waitFor(t, 10*time.Second, "revision 1 to be gone", func() bool {
		st, _ := in.c.App(context.Background(), "roll")
		return !slices.ContainsFunc(st.Replicas, func(r controller.Replica) bool { return r.Revision == 1 })
	})
}

func TestCanarySplitsTrafficByWeight(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "can")
	in.applyWait(t, a.manifest(t, 2, blueGreen, ""))
	canary := "canary: {steps: [{setWeight: 25}, {pause: {}}]}"
	res, err := in.c.ApplyFile(context.Background(), a.manifest(t, 2, canary, "V: two"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the canary to pause at 25%", func() bool {
		st, _ := in.c.App(context.Background(), "can")
		return st.Rollout.Detail.Phase == strategy.Paused && st.Rollout.Detail.Weight == 25
	})
	byRev := map[int]int{}
	for range 400 {
		rev, _ := get(t, a.listen)
		byRev[rev]++
	}
	// The router's schedule is deterministic: 1 in 4 exactly, give or take
	// where the schedule started.
	if byRev[2] < 95 || byRev[2] > 105 || byRev[1]+byRev[2] != 400 {
		t.Fatalf("answers by revision %v, want 25%% on revision 2", byRev)
	}
	if _, err := in.c.Action(context.Background(), "can", "promote", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	st := in.waitRollout(t, "can", res.Rollout)
	if st.Rollout.Phase != "promoted" {
		t.Fatalf("after promote: %s", st.Rollout.Phase)
	}
	if rev, _ := get(t, a.listen); rev != 2 {
		t.Fatalf("served by revision %d after promotion", rev)
	}
}

func TestPreviewServesTheNewRevisionBeforePromotion(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "prev")
	preview := freeAddr(t)
	manual := "blueGreen: {autoPromote: false, preview: " + preview + "}"
	in.applyWait(t, a.manifest(t, 1, manual, "")) // a first release needs no promote
	res, err := in.c.ApplyFile(context.Background(), a.manifest(t, 1, manual, "V: two"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the rollout to wait for promote", func() bool {
		st, _ := in.c.App(context.Background(), "prev")
		return st.Rollout.Detail.PauseReason == strategy.PausePromote
	})
	if rev, _ := get(t, preview); rev != 2 {
		t.Fatalf("preview served by revision %d, want 2", rev)
	}
	if rev, _ := get(t, a.listen); rev != 1 {
		t.Fatalf("main address served by revision %d before promotion, want 1", rev)
	}
	if _, err := in.c.Action(context.Background(), "prev", "promote", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	in.waitRollout(t, "prev", res.Rollout)
	if rev, _ := get(t, a.listen); rev != 2 {
		t.Fatalf("main address served by revision %d after promotion, want 2", rev)
	}
}

// TestUndoInsideTheWindowIsATrafficSwitch checks that the switch has
// happened when the undo call returns.
func TestUndoInsideTheWindowIsATrafficSwitch(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "undo")
	in.applyWait(t, a.manifest(t, 2, blueGreen, "V: one"))
	in.applyWait(t, a.manifest(t, 2, blueGreen, "V: two"))
	res, err := in.c.Action(context.Background(), "undo", "undo", api.ActionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rev, _ := get(t, a.listen); rev != 3 {
		t.Fatalf("first request after undo returned served by revision %d, want 3", rev)
	}
	st := in.waitRollout(t, "undo", res.Rollout)
	if st.Stable != 3 || !strings.Contains(res.Message, "rollout") {
		t.Fatalf("stable %d after undo: %s", st.Stable, res.Message)
	}
	revs, err := in.c.Revisions(context.Background(), "undo")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 3 || revs[2].Digest != revs[0].Digest || revs[2].CopyOf != 1 {
		t.Fatalf("revision 3 should copy revision 1: %+v", revs)
	}
	// An undo is a manual rollback: it leaves an incident about revision 2.
	if st.Rollout.ID != res.Rollout || st.Rollout.Incident != incident.ID("undo", st.Rollout.Number) {
		t.Fatalf("the undo's rollout #%d names incident %q", st.Rollout.ID, st.Rollout.Incident)
	}
	var inc *incident.Incident
	waitFor(t, 10*time.Second, "the undo's incident", func() bool {
		inc, err = in.c.Incident(context.Background(), st.Rollout.Incident)
		return err == nil
	})
	if inc.Kind != incident.KindUndone || !inc.Manual || inc.To != 2 || inc.From != 3 || inc.Figures.TimeToRollbackMs == nil {
		t.Fatalf("undo incident %+v", inc)
	}
}

// TestRestartAfterKill9 kills lastgood with SIGKILL in the middle of a
// rollout, checks that no replica outlives it, deletes the original
// artifact, and starts lastgood again on the same data: it must serve the
// stable revision from the stored copy and record that it rolled the
// unfinished rollout back.
func TestRestartAfterKill9(t *testing.T) {
	data := t.TempDir()
	child, addr := startChild(t, data)
	c := &api.Client{Base: "http://" + addr}
	in := &instance{c: c, dir: data}
	a := newApp(t, "phoenix")
	in.applyWait(t, a.manifest(t, 2, blueGreen, "V: one"))
	manual := "blueGreen: {autoPromote: false}"
	res, err := c.ApplyFile(context.Background(), a.manifest(t, 2, manual, "V: two"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	waitFor(t, 10*time.Second, "revision 2 to be ready and waiting for promote", func() bool {
		st, _ := c.App(context.Background(), "phoenix")
		pids = pids[:0]
		for _, r := range st.Replicas {
			pids = append(pids, r.PID)
		}
		return st.Rollout.Detail.PauseReason == strategy.PausePromote
	})
	if len(pids) != 4 {
		t.Fatalf("%d replicas, want 4", len(pids))
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	waitFor(t, 5*time.Second, "every replica to die with lastgood", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	if err := os.RemoveAll(filepath.Join(a.dir, "bin")); err != nil {
		t.Fatal(err)
	}

	in2 := start(t, data)
	waitFor(t, 10*time.Second, "the stable revision to serve again", func() bool {
		rev, err := revisionAt(a.listen)
		return err == nil && rev == 1
	})
	st2, err := in2.c.App(context.Background(), "phoenix")
	if err != nil {
		t.Fatal(err)
	}
	if st2.Stable != 1 || st2.Rollout.ID != res.Rollout || st2.Rollout.Phase != "rolled-back" || st2.Rollout.Trigger != strategy.TriggerRestart {
		t.Fatalf("after restart: stable %d, rollout #%d %s by %q", st2.Stable, st2.Rollout.ID, st2.Rollout.Phase, st2.Rollout.Trigger)
	}
	evs, err := in2.c.Events(context.Background(), "phoenix", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == "controller.recovered" }) {
		t.Fatalf("no controller.recovered event among %d", len(evs))
	}
	audit, err := in2.c.Audit(context.Background())
	if err != nil || !audit.OK() {
		t.Fatalf("audit after kill -9: %+v %v", audit, err)
	}
}

// startChild runs lastgood as a child process of the test binary.
func startChild(t *testing.T, data string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LASTGOOD_TEST_SERVE="+data)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child lastgood: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "API ")
	if !ok {
		t.Fatalf("child lastgood said %q", line)
	}
	return cmd, addr
}

func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited; only its parent has not reaped it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestCanaryMatchRulesReachTheCanaryOnPurpose(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "match")
	in.applyWait(t, a.manifest(t, 2, blueGreen, ""))
	canary := `canary:
    match:
      - header: {name: X-Canary, value: always}
      - cookie: {name: tester, value: "1"}
    steps: [{setWeight: 1}, {pause: {}}]`
	res, err := in.c.ApplyFile(context.Background(), a.manifest(t, 2, canary, "V: two"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the canary to pause at 1%", func() bool {
		st, _ := in.c.App(context.Background(), "match")
		return st.Rollout.Detail.Phase == strategy.Paused && st.Rollout.Detail.Weight == 1
	})
	ask := func(header, cookie string) int {
		req, _ := http.NewRequest("GET", "http://"+a.listen+"/", nil)
		if header != "" {
			req.Header.Set("x-canary", header)
		}
		if cookie != "" {
			req.Header.Set("Cookie", "theme=dark; tester="+cookie)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		rev, _ := strconv.Atoi(r.Header.Get("Lastgood-Revision"))
		return rev
	}
	for i := range 20 {
		if rev := ask("always", ""); rev != 2 {
			t.Fatalf("request %d with the header answered by revision %d", i, rev)
		}
		if rev := ask("", "1"); rev != 2 {
			t.Fatalf("request %d with the cookie answered by revision %d", i, rev)
		}
	}
	stable := 0
	for range 50 {
		if ask("never", "0") == 1 {
			stable++
		}
	}
	if stable < 45 {
		t.Fatalf("only %d of 50 requests without a matching rule reached the stable revision at 1%%", stable)
	}
	// Once the rollout ends the rules go with it.
	if _, err := in.c.Action(context.Background(), "match", "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	in.waitRollout(t, "match", res.Rollout)
	if rev := ask("always", "1"); rev != 1 {
		t.Fatalf("after the abort a matching request reached revision %d", rev)
	}
}

// A restart inside a rollback window starts the warm revision again and
// re-arms the checks that spend no α, but not the statistical ones: their
// evidence was in memory, and a fresh test would give the same release a
// second α. The holdback, which only served them, ends.
func TestRestartInsideTheWindowDoesNotSpendAlphaAgain(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "again")
	in.applyWait(t, a.manifest(t, 2, blueGreen, "V: one"))
	checks := "analysis:\n  checks:\n" + errorsCheck + "    - {name: panics, logs: {match: panic}}\n"
	st := in.applyWait(t, a.manifestWith(t, 2, blueGreen, "V: two", checks))
	if d := st.Rollout.Detail; d.Phase != strategy.Promoted || d.Holdback != 10 || d.FromReplicas == 0 {
		t.Fatalf("after promotion: %+v, want promoted with 10%% held back on a warm revision 1", d)
	}
	in.stop()

	in2 := start(t, data)
	var last controller.AppStatus
	defer func() {
		if t.Failed() {
			t.Logf("last status: %+v rollout %+v", last, last.Rollout)
		}
	}()
	waitFor(t, 30*time.Second, "the warm revision and the logs check back, the holdback gone", func() bool {
		var err error
		if last, err = in2.c.App(context.Background(), "again"); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, r := range last.Replicas {
			if r.Revision == 1 && r.Ready {
				ready++
			}
		}
		return ready == 2 && len(last.Rollout.Checks) > 0
	})
	d := last.Rollout.Detail
	if d.Phase != strategy.Promoted || d.Holdback != 0 || d.FromReplicas == 0 {
		t.Fatalf("after the restart: %+v, want promoted, revision 1 warm, nothing held back", d)
	}
	for _, r := range last.Traffic {
		if r.Revision == 1 && r.Weight > 0 {
			t.Fatalf("traffic after the restart %+v: revision 1 still takes a share", last.Traffic)
		}
	}
	for _, c := range last.Rollout.Checks {
		if c.Check != "panics" {
			t.Fatalf("check %s re-armed after the restart (checks %+v)", c.Check, last.Rollout.Checks)
		}
	}
	evs, err := in2.c.Events(context.Background(), "again", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e store.Event) bool {
		return e.Type == "controller.recovered" && strings.Contains(e.Message, "compare and threshold checks, if any, are not re-armed") &&
			strings.Contains(e.Message, "the 10% held back on revision 1 moves to revision 2")
	}) {
		t.Fatalf("no controller.recovered event saying what the restart did to the window")
	}
}
