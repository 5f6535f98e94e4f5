package analysis

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/journey"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// world is what the checks read: router samples and replicas, changed by
// the test between looks.
type world struct {
	mu       sync.Mutex
	samples  map[int]judge.Sample
	replicas []Replica
}

func (w *world) sources() Sources {
	return Sources{
		Samples: func(string) map[int]judge.Sample {
			w.mu.Lock()
			defer w.mu.Unlock()
			out := map[int]judge.Sample{}
			for k, v := range w.samples {
				v.Latency.Counts = append([]uint64(nil), v.Latency.Counts...)
				out[k] = v
			}
			return out
		},
		Replicas: func(string) []Replica {
			w.mu.Lock()
			defer w.mu.Unlock()
			return append([]Replica(nil), w.replicas...)
		},
	}
}

func (w *world) add(rev int, requests, errors uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.samples[rev]
	s.Requests += requests
	s.Errors += errors
	w.samples[rev] = s
}

func target(checks ...manifest.Check) Target {
	return Target{App: "web", Rollout: 7, Stable: 1, Canary: 2,
		Analysis: manifest.Analysis{Interval: manifest.Duration(10 * time.Millisecond),
			RouterInterval: manifest.Duration(10 * time.Millisecond), Alpha: 0.01, Checks: checks}}
}

func newRunner(t *testing.T, w *world, checks ...manifest.Check) *Runner {
	t.Helper()
	r, err := New(target(checks...), w.sources(), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

func TestCompareCountsOnlyWhatHappenedSinceTheFirstLook(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{1: {Requests: 100000, Errors: 50000}}} // a bad past
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
	c := r.checks[0]
	first := c.look(context.Background(), t0)
	if first.Verdict != judge.Inconclusive || first.Data || first.Evidence.StableSamples != 0 {
		t.Fatalf("first look %+v: want inconclusive, no data, the stable's past left out", first)
	}
	var res Result
	for i := range 40 {
		w.add(1, 400, 4) // stable: 1%
		w.add(2, 100, 20)
		res = c.look(context.Background(), t0.Add(time.Duration(i)*time.Second))
		if res.Verdict == judge.Fail {
			break
		}
	}
	if res.Verdict != judge.Fail || !res.Data {
		t.Fatalf("a canary failing 20%% against 1%% was not failed: %+v", res)
	}
	if s := res.Evidence.Stable; s < 0.009 || s > 0.011 {
		t.Fatalf("stable error rate %.4f, want 1%% (the window since the first look)", s)
	}
}

func TestCompareOfEqualRevisionsHasDataButDoesNotFail(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
	c := r.checks[0]
	var res Result
	for i := range 30 {
		w.add(1, 400, 4)
		w.add(2, 100, 1)
		res = c.look(context.Background(), t0.Add(time.Duration(i)*time.Second))
		if res.Verdict == judge.Fail {
			t.Fatalf("equal revisions failed: %+v", res)
		}
	}
	if !res.Data {
		t.Fatalf("3000 canary requests are not enough data: %+v", res)
	}
}

func TestLogsCheckReadsTheCanaryLogs(t *testing.T) {
	dir := t.TempDir()
	old, fresh := filepath.Join(dir, "old.log"), filepath.Join(dir, "fresh.log")
	os.WriteFile(old, []byte("panic: before the rollout\n"), 0o644)
	os.WriteFile(fresh, []byte("starting\npanic: at start\n"), 0o644)
	w := &world{replicas: []Replica{
		{Revision: 2, Log: old, Started: t0.Add(-time.Hour)}, // started before: its past is not counted
		{Revision: 2, Log: fresh, Started: t0.Add(time.Second)},
		{Revision: 1, Log: old, Started: t0.Add(-time.Hour)},
	}}
	r := newRunner(t, w, manifest.Check{Name: "panics", Logs: &manifest.Logs{Match: "panic", Max: 1}})
	c := r.checks[0]
	res := c.look(context.Background(), t0)
	if res.Verdict != judge.Pass || !res.Data || res.Evidence.Canary != 1 {
		t.Fatalf("first look %+v: want 1 match (the fresh replica's), a pass", res)
	}
	f, _ := os.OpenFile(old, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintln(f, "panic: during the rollout")
	f.Close()
	res = c.look(context.Background(), t0.Add(time.Second))
	if res.Verdict != judge.Fail || !strings.Contains(res.Reason, "2 log lines of revision 2") || !strings.Contains(res.Reason, "panic: during the rollout") {
		t.Fatalf("second look %+v", res)
	}
}

func TestResourcesCheckMeasuresRealProcesses(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	w := &world{replicas: []Replica{{Revision: 2, PID: cmd.Process.Pid, Ready: true}}}
	r := newRunner(t, w,
		manifest.Check{Name: "roomy", Resources: &manifest.Resources{MaxRSS: 1 << 30, MaxFDs: 1000}},
		manifest.Check{Name: "tight", Resources: &manifest.Resources{MaxRSS: 4 << 10}},
	)
	if res := r.checks[0].look(context.Background(), t0); res.Verdict != judge.Pass || !res.Data {
		t.Fatalf("roomy: %+v", res)
	}
	res := r.checks[1].look(context.Background(), t0)
	if res.Verdict != judge.Fail || !strings.Contains(res.Reason, fmt.Sprintf("pid %d uses", cmd.Process.Pid)) {
		t.Fatalf("tight: %+v", res)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if res := r.checks[0].look(context.Background(), t0.Add(time.Second)); res.Verdict != judge.Inconclusive || res.Data {
		t.Fatalf("after the process is gone: %+v", res)
	}
}

func TestJourneyRunsOnEveryReadyCanaryReplica(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	handler := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[body]++
			mu.Unlock()
			fmt.Fprint(w, body)
		})
	}
	good, bad := httptest.NewServer(handler("good")), httptest.NewServer(handler("bad"))
	defer good.Close()
	defer bad.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	w := &world{replicas: []Replica{{Revision: 2, Addr: addr(good), Ready: true}, {Revision: 2, Addr: addr(bad)}}}
	steps := []journey.Step{{Name: "home", Method: "GET", Path: "/", ExpectStatus: 200, ExpectBody: "good"}}
	r := newRunner(t, w, manifest.Check{Name: "home", Journey: &manifest.Journey{Steps: steps, Timeout: manifest.Duration(time.Second)}})
	if res := r.checks[0].look(context.Background(), t0); res.Verdict != judge.Pass || !res.Data {
		t.Fatalf("only the good replica is ready: %+v", res)
	}
	w.mu.Lock()
	w.replicas[1].Ready = true
	w.mu.Unlock()
	res := r.checks[0].look(context.Background(), t0)
	if res.Verdict != judge.Fail || !strings.Contains(res.Reason, "step 1 (home) on replica "+addr(bad)) {
		t.Fatalf("with the bad replica ready: %+v", res)
	}
}

func TestUnansweredExternalChecksAreInconclusiveWithoutData(t *testing.T) {
	// The hook answers nothing until the test ends, however late the
	// check's 100ms timeout fires on a busy machine.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release) // before Close, which waits for the handler
	w := &world{}
	r := newRunner(t, w,
		manifest.Check{Name: "hook", Webhook: &manifest.Webhook{URL: hang.URL, Timeout: manifest.Duration(100 * time.Millisecond)}},
		manifest.Check{Name: "prom", Prometheus: &manifest.Prometheus{Address: "http://127.0.0.1:1", Query: "up"}, FailIf: "result > 1"},
	)
	for _, c := range r.checks {
		res := c.look(context.Background(), t0)
		if res.Verdict != judge.Inconclusive || res.Data || !strings.Contains(res.Reason, "no verdict") {
			t.Errorf("%s: %+v", res.Check, res)
		}
	}
}

// tally runs a Runner in the background and counts its results per check.
type tally struct {
	mu     sync.Mutex
	seen   map[string]int
	cancel context.CancelFunc
	done   chan struct{}
}

// runCounting starts r; each result is passed to inspect (if not nil)
// before it is counted. Call stop to end the run.
func runCounting(r *Runner, inspect func(Result)) *tally {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tally{seen: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		r.Run(ctx, func(res Result) {
			if inspect != nil {
				inspect(res)
			}
			tl.mu.Lock()
			defer tl.mu.Unlock()
			tl.seen[res.Check]++
		})
	}()
	return tl
}

// counts returns a copy of the counts so far.
func (tl *tally) counts() map[string]int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return maps.Clone(tl.seen)
}

// stop ends the run and waits for it.
func (tl *tally) stop() {
	tl.cancel()
	<-tl.done
}

func TestRunReportsEveryCheckUntilCancelled(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w,
		manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}},
		manifest.Check{Name: "slo", Threshold: &manifest.Threshold{Metric: "errorRate", Max: "0.05"}},
	)
	tl := runCounting(r, func(res Result) {
		if res.Rollout != 7 {
			t.Errorf("result of rollout %d", res.Rollout)
		}
	})
	defer tl.stop()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		seen := tl.counts()
		if min(seen["errors"], seen["slo"]) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports %v", seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidateNamesTheFieldOfEachProblem(t *testing.T) {
	an := &manifest.Analysis{Checks: []manifest.Check{
		{Name: "ok", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}},
		{Name: "q", Prometheus: &manifest.Prometheus{Address: "http://127.0.0.1:9090", Query: "sum(rate(x[1m])"}, FailIf: "result >"},
	}}
	got := Validate(an)
	want := map[string]string{"analysis.checks[1].prometheus.query": "query 1:", "analysis.checks[1].failIf": "failIf"}
	if len(got) != len(want) {
		t.Fatalf("problems %+v, want %d", got, len(want))
	}
	for _, p := range got {
		if !strings.Contains(p.Message, want[p.Field]) {
			t.Errorf("problem %+v, want field %s", p, p.Field)
		}
	}
	if Validate(nil) != nil {
		t.Error("no analysis is not a problem")
	}
}

// After a promotion with no holdback the stable takes no requests: the
// canary is not judged against the stable's last figures (which would
// fail good releases whenever load moves), and the result says that the
// test gathers no evidence instead of showing a number that cannot move.
func TestCompareAgainstAnIdleStableGathersNoEvidence(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
	c := r.checks[0]
	c.look(context.Background(), t0)
	w.add(1, 2000, 20) // 1% before the switch
	first := c.look(context.Background(), t0)
	var res Result
	for i := range 60 {
		w.add(2, 400, 80) // 20% after it, the stable idle
		res = c.look(context.Background(), t0.Add(time.Duration(i)*time.Second))
		if res.Verdict == judge.Fail {
			t.Fatalf("a canary was failed against an idle stable's last figures: %+v", res)
		}
	}
	if !strings.Contains(res.Reason, "no concurrent baseline") || !hasWarning(res, "gathers no evidence") {
		t.Fatalf("after a minute of an idle stable: %s (warnings %q), want it to say there is no concurrent baseline", res.Reason, res.Evidence.Warnings)
	}
	if res.Evidence.LogEValue != first.Evidence.LogEValue || res.Evidence.StableSamples != 2000 {
		t.Fatalf("evidence moved without stable requests: log e %v → %v, stable samples %d", first.Evidence.LogEValue, res.Evidence.LogEValue, res.Evidence.StableSamples)
	}
}

func hasWarning(r Result, part string) bool {
	for _, w := range r.Evidence.Warnings {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// A stable revision is idle after idleAfter without a request, however
// often the check looks: at a 100ms routerInterval three quiet looks are a
// gap between requests, not a promotion.
func TestIdleStableIsATimeNotACountOfLooks(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
	c := r.checks[0]
	c.look(context.Background(), t0)
	w.add(1, 2000, 20)
	c.look(context.Background(), t0)
	step := 100 * time.Millisecond
	for i := 1; time.Duration(i)*step < idleAfter; i++ {
		w.add(2, 40, 0) // the stable quiet
		if res := c.look(context.Background(), t0.Add(time.Duration(i)*step)); hasWarning(res, "no concurrent baseline") {
			t.Fatalf("idle after %v of a quiet stable, before idleAfter = %v: %s", time.Duration(i)*step, idleAfter, res.Reason)
		}
	}
	w.add(2, 40, 0)
	if res := c.look(context.Background(), t0.Add(idleAfter+step)); !hasWarning(res, "no concurrent baseline") {
		t.Fatalf("after %v of a quiet stable: %s, want it called idle", idleAfter+step, res.Reason)
	}
	w.add(1, 1, 0) // one request: not idle any more
	if res := c.look(context.Background(), t0.Add(idleAfter+2*step)); hasWarning(res, "no concurrent baseline") {
		t.Fatalf("the stable took a request and is still called idle: %s", res.Reason)
	}
}

// With a holdback the stable keeps a small share after the switch, and
// the same e-process goes on gathering evidence from both revisions: its
// e-value moves at every look and a bad release is failed inside the
// window.
func TestCompareGoesOnThroughTheWindowWithAHoldback(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
	c := r.checks[0]
	c.look(context.Background(), t0)
	// The rollout: 10% canary, 4% errors against 1%, too little to fail.
	for i := range 5 {
		w.add(1, 90, 1)
		w.add(2, 10, 0)
		if res := c.look(context.Background(), t0.Add(time.Duration(i)*time.Second)); res.Verdict == judge.Fail {
			t.Fatalf("failed on the rollout's little data: %s", res.Reason)
		}
	}
	// The window: 98% on the canary, 2% held back on the stable.
	var res Result
	last := math.Inf(-1)
	moved := 0
	for i := range 600 {
		w.add(1, 2, 0)
		w.add(2, 98, 4)
		res = c.look(context.Background(), t0.Add(time.Duration(5+i)*time.Second))
		if res.Evidence.LogEValue != last {
			moved++
		}
		last = res.Evidence.LogEValue
		if res.Verdict == judge.Fail {
			break
		}
	}
	if res.Verdict != judge.Fail {
		t.Fatalf("a 4%% canary against a 0%% stable at a 2%% holdback was not failed in the window: %s", res.Reason)
	}
	if moved < 10 || hasWarning(res, "no concurrent baseline") {
		t.Fatalf("the e-value moved at %d looks (warnings %q): want it live", moved, res.Evidence.Warnings)
	}
}

// When the router's counters start again from zero (it was recreated), the
// check carries what it counted and goes on: its samples keep growing and
// its evidence stands, so no fresh α is spent.
func TestCompareCarriesItsCountsOverACounterReset(t *testing.T) {
	w := &world{samples: map[int]judge.Sample{}}
	r := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0"}})
	c := r.checks[0]
	c.look(context.Background(), t0)
	var before Result
	for i := range 10 {
		w.add(1, 400, 4)
		w.add(2, 100, 4)
		before = c.look(context.Background(), t0.Add(time.Duration(i)*time.Second))
	}
	w.mu.Lock()
	w.samples = map[int]judge.Sample{1: {Requests: 40}, 2: {Requests: 10, Errors: 1}}
	w.mu.Unlock()
	after := c.look(context.Background(), t0.Add(11*time.Second))
	if after.Evidence.CanarySamples != before.Evidence.CanarySamples+10 || after.Evidence.StableSamples != before.Evidence.StableSamples+40 {
		t.Fatalf("samples after the reset: canary %d, stable %d; want %d and %d (carried over, plus the new counts)",
			after.Evidence.CanarySamples, after.Evidence.StableSamples, before.Evidence.CanarySamples+10, before.Evidence.StableSamples+40)
	}
	if after.Evidence.LogEValue < before.Evidence.LogEValue-5 || hasWarning(after, "went backwards") {
		t.Fatalf("evidence after the reset: log e %v (was %v), warnings %q: the test started again", after.Evidence.LogEValue, before.Evidence.LogEValue, after.Evidence.Warnings)
	}
}
