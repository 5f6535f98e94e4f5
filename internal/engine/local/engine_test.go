package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScaleUpAndDown(t *testing.T) {
	e := startEngine(t, Config{})
	ctx := context.Background()
	spec := sampleSpec("web", 1, nil)

	if err := e.Scale(ctx, spec, 2); err != nil {
		t.Fatal(err)
	}
	rs := waitReady(t, e, "web", 2)
	if rs[0].ID != "web-1-0" || rs[1].ID != "web-1-1" {
		t.Fatalf("replicas = %s, want web-1-0 web-1-1", ids(rs))
	}
	if rs[0].Addr == rs[1].Addr {
		t.Errorf("both replicas on %s", rs[0].Addr)
	}
	for _, r := range rs {
		if code, body := get(t, r.Addr, "/"); code != 200 || body != "hello from web revision 1 version dev\n" {
			t.Errorf("%s: GET / = %d %q", r.ID, code, body)
		}
		want := filepath.Join(e.cfg.DataDir, "logs", "web", "1", r.ID+".log")
		if r.LogPath != want {
			t.Errorf("%s: LogPath = %s, want %s", r.ID, r.LogPath, want)
		}
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "run", r.ID+".pid")); err != nil {
			t.Errorf("%s: no process record: %v", r.ID, err)
		}
	}

	if err := e.Scale(ctx, spec, 3); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, "web", 3)

	before := e.Replicas("web")
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	rs = waitReady(t, e, "web", 1)
	if rs[0].ID != "web-1-0" || rs[0].PID != before[0].PID {
		t.Errorf("after scaling to 1: %s (pid %d), want web-1-0 with pid %d: highest index stops first", ids(rs), rs[0].PID, before[0].PID)
	}
	for _, r := range before[1:] {
		waitFor(t, 10*time.Second, r.ID+" process gone", func() bool { return gone(r.PID) })
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "run", r.ID+".pid")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: process record left after stop: %v", r.ID, err)
		}
	}
	if got := len(e.events.of(EventStopped)); got != 2 {
		t.Errorf("%d stopped events, want 2", got)
	}
	if got := len(e.events.of(EventStarted)); got != 3 {
		t.Errorf("%d started events, want 3", got)
	}
}

func TestScaleDownStopsNotReadyFirst(t *testing.T) {
	e := startEngine(t, Config{})
	ctx := context.Background()
	dir := t.TempDir()
	spec := helperSpec(t, "mixed", 1, modeHealthFile, map[string]string{"HEALTH_FILE": filepath.Join(dir, "{port}")})
	spec.Readiness = fastHTTP(1, 1)
	if err := e.Scale(ctx, spec, 3); err != nil {
		t.Fatal(err)
	}
	var rs []Replica
	waitFor(t, 20*time.Second, "three processes", func() bool {
		rs = e.Replicas("mixed")
		return len(rs) == 3 && rs[0].PID > 0 && rs[1].PID > 0 && rs[2].PID > 0
	})
	for _, r := range []Replica{rs[0], rs[2]} {
		_, port, _ := strings.Cut(r.Addr, ":")
		if err := os.WriteFile(filepath.Join(dir, port), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "replicas 0 and 2 ready", func() bool {
		rs = e.Replicas("mixed")
		return rs[0].Ready && !rs[1].Ready && rs[2].Ready
	})
	if err := e.Scale(ctx, spec, 2); err != nil {
		t.Fatal(err)
	}
	rs = e.Replicas("mixed")
	if rs[0].State != StateReady || rs[1].State != StateStopping || rs[2].State != StateReady {
		t.Errorf("after scaling to 2: %s, want the not-ready mixed-1-1 stopping", ids(rs))
	}
}

func TestStopOrder(t *testing.T) {
	rs := []*replica{
		{index: 0, state: StateReady},
		{index: 1, state: StateStarting},
		{index: 2, state: StateReady},
		{index: 3, state: StateUnready},
	}
	var got []int
	for _, r := range stopOrder(rs) {
		got = append(got, r.index)
	}
	if fmt.Sprint(got) != "[3 1 2 0]" {
		t.Errorf("stop order = %v, want [3 1 2 0]: not ready first, then highest index", got)
	}
}

func TestScaleToZeroReturnsAtOnceAndKillsAfterGrace(t *testing.T) {
	e := startEngine(t, Config{StopGrace: 1500 * time.Millisecond})
	ctx := context.Background()
	spec := helperSpec(t, "stubborn", 1, modeIgnoreTerm, nil)
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	r := waitReady(t, e, "stubborn", 1)[0]

	begin := time.Now()
	if err := e.Scale(ctx, spec, 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 500*time.Millisecond {
		t.Errorf("Scale to 0 took %s; it must not wait for the stop", took)
	}
	if rs := e.Replicas("stubborn"); len(rs) != 1 || rs[0].State != StateStopping || rs[0].Ready {
		t.Errorf("right after Scale to 0: %s, want one stopping replica", ids(rs))
	}
	waitFor(t, 20*time.Second, "replica removed", func() bool { return len(e.Replicas("stubborn")) == 0 })
	if took := time.Since(begin); took < 1500*time.Millisecond {
		t.Errorf("a replica ignoring SIGTERM was gone after %s, before the grace period", took)
	}
	if !gone(r.PID) {
		t.Errorf("pid %d still runs", r.PID)
	}
	stopped := e.events.of(EventStopped)
	if len(stopped) != 1 || stopped[0].Data["status"] != "signal: killed" {
		t.Errorf("stopped events = %+v, want one with status signal: killed", stopped)
	}
}

func TestReadinessHTTPHysteresis(t *testing.T) {
	e := startEngine(t, Config{})
	ctx := context.Background()
	healthy := filepath.Join(t.TempDir(), "healthy")
	spec := helperSpec(t, "flap", 1, modeHealthFile, map[string]string{"HEALTH_FILE": healthy})
	spec.Readiness = fastHTTP(3, 3)
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "process running", func() bool {
		rs := e.Replicas("flap")
		return len(rs) == 1 && rs[0].PID > 0
	})
	time.Sleep(500 * time.Millisecond) // five failing probes
	if rs := e.Replicas("flap"); rs[0].State != StateStarting {
		t.Fatalf("state = %s with a failing /healthz, want starting", rs[0].State)
	}

	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	becameHealthy := time.Now()
	waitReady(t, e, "flap", 1)
	if took := time.Since(becameHealthy); took < 150*time.Millisecond {
		t.Errorf("ready %s after /healthz passed; successThreshold 3 at 100ms needs at least 200ms", took)
	}

	os.Remove(healthy)
	becameUnhealthy := time.Now()
	waitFor(t, 20*time.Second, "unready", func() bool { return e.Replicas("flap")[0].State == StateUnready })
	if took := time.Since(becameUnhealthy); took < 150*time.Millisecond {
		t.Errorf("unready %s after /healthz failed; failureThreshold 3 at 100ms needs at least 200ms", took)
	}
	if ev := e.events.of(EventUnready); len(ev) != 1 || !strings.Contains(ev[0].Message, "503") {
		t.Errorf("unready events = %+v, want one naming status 503", ev)
	}

	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, "flap", 1)
	if n := len(e.events.of(EventReady)); n != 2 {
		t.Errorf("%d ready events, want 2", n)
	}
	if r := e.Replicas("flap")[0]; r.Restarts != 0 {
		t.Errorf("readiness failures restarted the replica %d times", r.Restarts)
	}
}

func TestDefaultReadinessIsTCP(t *testing.T) {
	e := startEngine(t, Config{})
	// /healthz never passes, but nothing asks: the default probe connects.
	spec := Spec{App: "tcp", Revision: 1, Command: []string{sampleApp}, Env: map[string]string{"FAULT_NEVER_READY": "1"}}
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, "tcp", 1)
}

func TestNeverReadyStaysNotReady(t *testing.T) {
	e := startEngine(t, Config{})
	spec := sampleSpec("never", 1, map[string]string{"FAULT_NEVER_READY": "1"})
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "process running", func() bool {
		rs := e.Replicas("never")
		return len(rs) == 1 && rs[0].PID > 0
	})
	addr := e.Replicas("never")[0].Addr
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, 20*time.Second, "the app serving GET /", func() bool {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	time.Sleep(1500 * time.Millisecond) // 15 probe periods
	r := e.Replicas("never")[0]
	if r.Ready || r.State != StateStarting || r.Restarts != 0 {
		t.Errorf("replica = %+v, want starting, not ready, no restarts", r)
	}
	if n := len(e.events.of(EventReady)); n != 0 {
		t.Errorf("%d ready events", n)
	}
}

func TestLivenessFailureRestarts(t *testing.T) {
	e := startEngine(t, Config{})
	healthy := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := helperSpec(t, "live", 1, modeHealthFile, map[string]string{"HEALTH_FILE": healthy})
	spec.Liveness = fastHTTP(3, 1)
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	first := waitReady(t, e, "live", 1)[0]
	os.Remove(healthy)
	waitFor(t, 20*time.Second, "a restart", func() bool {
		r := e.Replicas("live")[0]
		return r.Restarts > first.Restarts && r.PID != 0 && r.PID != first.PID
	})
	if !gone(first.PID) {
		t.Errorf("the first process %d still runs", first.PID)
	}
	saw503 := false
	for _, ev := range e.events.of(EventLivenessFailed) {
		saw503 = saw503 || strings.Contains(ev.Message, "503")
	}
	if !saw503 {
		t.Errorf("no liveness-failed event names status 503: %+v", e.events.of(EventLivenessFailed))
	}
	exited := e.events.of(EventExited)
	if len(exited) == 0 || exited[0].Data["status"] != "signal: killed" {
		t.Errorf("exited events = %+v, want status signal: killed", exited)
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	e := startEngine(t, Config{})
	spec := sampleSpec("crash", 1, map[string]string{"FAULT_EXIT_ON_START": "1"})
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "three restarts", func() bool {
		rs := e.Replicas("crash")
		return len(rs) == 1 && rs[0].Restarts >= 3
	})
	r := e.Replicas("crash")[0]
	if r.Ready || r.LastExit != "exit status 3" {
		t.Errorf("replica = %+v, want not ready, LastExit exit status 3", r)
	}
	restarting := e.events.of(EventRestarting)
	for i, want := range []float64{0.2, 0.4, 0.8} {
		if got := restarting[i].Data["delay"]; got != want {
			t.Errorf("restart %d: delay %v, want %v", i+1, got, want)
		}
	}
	exited := e.events.of(EventExited)[0]
	tail, _ := exited.Data["logTail"].([]string)
	if exited.Data["exitCode"] != 3 || len(tail) == 0 || !strings.Contains(tail[len(tail)-1], "FAULT_EXIT_ON_START") {
		t.Errorf("exited event data = %v, want exitCode 3 and the log tail", exited.Data)
	}
}

func TestBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: 200 * time.Millisecond, 1: 400 * time.Millisecond, 2: 800 * time.Millisecond,
		7: 25600 * time.Millisecond, 8: 30 * time.Second, 50: 30 * time.Second,
	} {
		if got := backoff(failures); got != want {
			t.Errorf("backoff(%d) = %s, want %s", failures, got, want)
		}
	}
}

func TestPortExpansion(t *testing.T) {
	e := startEngine(t, Config{})
	spec := helperSpec(t, "argv", 1, modeListenArg, map[string]string{"GREETING": "hi"},
		"127.0.0.1:${PORT}", "${GREETING}-${LASTGOOD_APP}-${LASTGOOD_REVISION}", "${UNSET}", "$GREETING")
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	r := waitReady(t, e, "argv", 1)[0]
	_, port, _ := strings.Cut(r.Addr, ":")
	want := fmt.Sprintf("args: 127.0.0.1:%s hi-argv-1 ${UNSET} $GREETING\n", port)
	waitFor(t, 10*time.Second, "log line", func() bool { return strings.Contains(readFile(t, r.LogPath), want) })
}

func TestScaleRejectsSpecsThatCannotRun(t *testing.T) {
	e := startEngine(t, Config{})
	ctx := context.Background()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		spec Spec
		want error
		path string
	}{
		{Spec{App: "x", Revision: 1, Command: []string{missing}}, ErrCommandNotFound, missing},
		{Spec{App: "x", Revision: 1, Command: []string{"./missing"}, Dir: dir}, ErrCommandNotFound, missing},
		{Spec{App: "x", Revision: 1, Command: []string{"no-such-program-here"}}, ErrCommandNotFound, "no-such-program-here"},
		{Spec{App: "x", Revision: 1, Command: []string{plain}}, ErrNotExecutable, plain},
		{Spec{App: "x", Revision: 1, Command: []string{dir}}, ErrNotExecutable, dir},
		{Spec{App: "x", Revision: 1, Command: []string{"plain"}, Env: map[string]string{"PATH": dir}}, ErrNotExecutable, plain},
		{Spec{App: "x", Revision: 1}, ErrInvalidSpec, "empty command"},
		{Spec{App: "a/b", Revision: 1, Command: []string{sampleApp}}, ErrInvalidSpec, "a/b"},
		{Spec{App: "x", Revision: 0, Command: []string{sampleApp}}, ErrInvalidSpec, "revision 0"},
	}
	for _, c := range cases {
		err := e.Scale(ctx, c.spec, 1)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.path) {
			t.Errorf("Scale(%v) = %v, want %v naming %s", c.spec.Command, err, c.want, c.path)
		}
	}
	if rs := e.Replicas("x"); len(rs) != 0 {
		t.Errorf("rejected specs started replicas: %s", ids(rs))
	}
	if err := e.Scale(ctx, Spec{App: "x", Revision: 1, Command: []string{missing}}, 0); err != nil {
		t.Errorf("scaling a revision whose program is gone to 0: %v", err)
	}
}

func TestAdopt(t *testing.T) {
	e := startEngine(t, Config{})
	ctx := context.Background()
	if err := e.Scale(ctx, sampleSpec("web", 1, nil), 2); err != nil {
		t.Fatal(err)
	}
	before := waitReady(t, e, "web", 2)
	if err := e.Adopt("web", 1, 3); err != nil {
		t.Fatal(err)
	}
	after := e.Replicas("web")
	if len(after) != 2 {
		t.Fatalf("after Adopt: %s", ids(after))
	}
	for i, r := range after {
		if r.ID != fmt.Sprintf("web-3-%d", i) || r.Revision != 3 || r.PID != before[i].PID || r.LogPath != before[i].LogPath || !r.Ready {
			t.Errorf("adopted %+v, want web-3-%d with pid %d and log %s", r, i, before[i].PID, before[i].LogPath)
		}
	}
	if _, body := get(t, after[0].Addr, "/"); !strings.Contains(body, "revision 1 ") {
		t.Errorf("GET / = %q: an adopted process keeps its environment", body)
	}
	// Nothing of revision 1 is desired any more, and revision 3 keeps 2.
	time.Sleep(300 * time.Millisecond)
	if rs := e.Replicas("web"); len(rs) != 2 || rs[0].Revision != 3 || rs[0].PID != before[0].PID {
		t.Errorf("after Adopt the engine changed replicas: %s", ids(rs))
	}
	if err := e.Adopt("web", 1, 4); !errors.Is(err, ErrNoReplicas) {
		t.Errorf("Adopt of a revision without replicas = %v, want ErrNoReplicas", err)
	}
	if err := e.Scale(ctx, sampleSpec("web", 5, nil), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Adopt("web", 3, 5); !errors.Is(err, ErrRevisionInUse) {
		t.Errorf("Adopt onto a revision with replicas = %v, want ErrRevisionInUse", err)
	}
	// Scaling the adopted revision treats the adopted replicas as its own.
	if err := e.Scale(ctx, sampleSpec("web", 3, nil), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "revision 3 down to one", func() bool {
		n := 0
		for _, r := range e.Replicas("web") {
			if r.Revision == 3 {
				n++
			}
		}
		return n == 1
	})
	if !gone(before[1].PID) {
		t.Errorf("web-3-1 (pid %d) should have been stopped", before[1].PID)
	}
}

func TestDrainIsCalledBeforeSIGTERM(t *testing.T) {
	type drained struct {
		r      Replica
		status int
	}
	drains := make(chan drained, 4)
	var e *testEngine
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	e = startEngine(t, Config{Drain: func(ctx context.Context, r Replica) {
		d := drained{r: r, status: -1}
		if resp, err := client.Get("http://" + r.Addr + "/"); err == nil {
			d.status = resp.StatusCode // still serving: SIGTERM has not been sent
			resp.Body.Close()
		}
		drains <- d
	}})
	ctx := context.Background()
	spec := sampleSpec("drain", 1, nil)
	if err := e.Scale(ctx, spec, 2); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, "drain", 2)
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-drains:
		if d.r.ID != "drain-1-1" || d.r.State != StateStopping || d.r.Ready || d.status != 200 {
			t.Errorf("Drain saw %+v (GET / %d), want drain-1-1 stopping and still serving", d.r, d.status)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Drain was not called")
	}
	e.stop(t)
	if len(drains) != 0 {
		t.Errorf("Drain called on engine shutdown: %+v", <-drains)
	}
}

func TestChangedWakesOnStateChange(t *testing.T) {
	e := startEngine(t, Config{})
	if err := e.Scale(context.Background(), sampleSpec("wake", 1, nil), 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-e.Changed():
			if rs := e.Replicas("wake"); len(rs) == 1 && rs[0].Ready {
				return
			}
		case <-deadline:
			t.Fatalf("Changed never woke with a ready replica: %s", ids(e.Replicas("wake")))
		}
	}
}
