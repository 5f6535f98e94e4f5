package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/prometheustest"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// The end-to-end rollback tests: a real lastgood, the real sample app as
// replicas with faults set by environment, real clients through the router.

const canaryAnalyze = "canary: {steps: [{setWeight: 20}, {analyze: {for: 1m}}]}"

func analysisOf(checks string) string {
	return "analysis:\n  interval: 200ms\n  checks:\n" + checks
}

const errorsCheck = "    - name: errors\n      compare: {metric: errorRate, maxIncrease: 0.01}\n"

// releaseAndWait releases v1, then applies v2 with env and extra, and waits
// for its rollout to end.
func releaseAndWait(t *testing.T, in *instance, a *app, strat, env, extra string, load bool) (controller.AppStatus, *clients) {
	t.Helper()
	in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
	var c *clients
	if load {
		c = startClients(t, a.listen, 4)
	}
	res, err := in.c.ApplyFile(context.Background(), a.manifestWith(t, 2, strat, env, extra))
	if err != nil {
		t.Fatal(err)
	}
	return in.waitRollout(t, a.name, res.Rollout), c
}

func wantRollBack(t *testing.T, st controller.AppStatus, trigger, reason string) {
	t.Helper()
	d := st.Rollout.Detail
	if d.Phase != strategy.RolledBack || d.Trigger != trigger || !strings.Contains(d.Reason, reason) {
		t.Fatalf("rollout ended %s, trigger %q, reason %q; want rolled back by %s with %q", d.Phase, d.Trigger, d.Reason, trigger, reason)
	}
	if st.Stable != 1 {
		t.Fatalf("stable revision is %d, want 1", st.Stable)
	}
	for _, r := range st.Traffic {
		if r.Revision != 1 && r.Weight > 0 {
			t.Fatalf("traffic after the rollback: %+v", st.Traffic)
		}
	}
}

// verdicts returns the analysis.verdict events of an app.
func verdicts(t *testing.T, in *instance, app string) []analysis.Result {
	t.Helper()
	evs, err := in.c.Events(context.Background(), app, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []analysis.Result
	for _, e := range evs {
		if e.Type != "analysis.verdict" {
			continue
		}
		var r analysis.Result
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatalf("verdict event %d: %v", e.Seq, err)
		}
		out = append(out, r)
	}
	return out
}

func TestCanaryWithMoreErrorsIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "errs")
	st, c := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_ERROR_RATE: '0.2'", analysisOf(errorsCheck), true)
	c.stop()
	wantRollBack(t, st, strategy.TriggerAnalysis, "check errors failed")
	vs := verdicts(t, in, "errs")
	if len(vs) == 0 || vs[len(vs)-1].Verdict != judge.Fail {
		t.Fatalf("verdict events %+v, want the last to be a failure", vs)
	}
	ev := vs[len(vs)-1].Evidence
	if ev.CanarySamples == 0 || ev.StableSamples == 0 || ev.Canary <= ev.Stable || ev.Method.Citation == "" {
		t.Fatalf("evidence %+v: want both samples, canary worse, a cited method", ev)
	}
	// Only the canary failed requests, and far fewer than it served.
	byRev, failed := c.snapshot()
	if len(failed) == 0 || byRev[1] == 0 {
		t.Fatalf("answers %v, %d failed: want revision 1 serving and the canary's failures seen", byRev, len(failed))
	}
	if rev, _ := get(t, a.listen); rev != 1 {
		t.Fatalf("served by revision %d after the rollback", rev)
	}
	// The rollback left its incident bundle with the deciding verdict.
	id := incident.ID("errs", st.Rollout.Number)
	var inc *incident.Incident
	waitFor(t, 10*time.Second, "the incident bundle", func() bool {
		var err error
		inc, err = incident.Load(filepath.Join(in.dir, "incidents"), id)
		return err == nil
	})
	for _, f := range []string{incident.ReportMarkdown, incident.ReportHTML} {
		if b, err := os.ReadFile(filepath.Join(in.dir, "incidents", id, f)); err != nil || !strings.Contains(string(b), "Incident "+id) {
			t.Errorf("%s: %v", f, err)
		}
	}
	// lastgood's own telemetry counts it, as a user's Prometheus would see.
	waitFor(t, 10*time.Second, "the rollback in /metrics", func() bool {
		res, err := http.Get(in.c.Base + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.Contains(string(b), `lastgood_rollbacks_total{app="errs",trigger="analysis"} 1`) &&
			strings.Contains(string(b), `lastgood_requests_total{app="errs",code="5xx",revision="2"}`)
	})
	// A real Prometheus scraping this lastgood answers PromQL about it.
	prom := prometheustest.Start(t, "lastgood", strings.TrimPrefix(in.c.Base, "http://"), `lastgood_rollbacks_total{app="errs"}`)
	for q, want := range map[string]float64{
		`lastgood_rollbacks_total{app="errs",trigger="analysis"}`: 1,
		`lastgood_time_to_detect_seconds_count{app="errs"}`:       1,
		`lastgood_rollout_phase{app="errs",phase="rolled-back"}`:  1,
	} {
		if got := prometheustest.Query(t, prom, q); got != want {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
	if !slices.ContainsFunc(inc.Resources, func(u incident.Usage) bool { return u.Revision == 2 && u.RSSBytes > 0 }) {
		t.Errorf("the incident has no resource samples of the failed revision: %+v", inc.Resources)
	}
	if inc.Trigger != strategy.TriggerAnalysis || inc.Figures.BlastRadius.Requests == 0 || !slices.ContainsFunc(inc.Verdicts, func(v incident.Verdict) bool { return v.Deciding }) {
		t.Fatalf("incident %s: trigger %q, blast radius %+v, verdicts %+v", id, inc.Trigger, inc.Figures.BlastRadius, inc.Verdicts)
	}
}

func TestIdenticalCanaryIsPromoted(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "aa")
	checks := errorsCheck + "    - name: latency\n      compare: {metric: latencyP99, maxIncrease: 200ms}\n"
	strat := "canary: {steps: [{setWeight: 50}, {analyze: {for: 1s, maxWait: 20s}}]}"
	st, c := releaseAndWait(t, in, a, strat, "V: two", analysisOf(checks), true)
	c.stop()
	if st.Rollout.Detail.Phase != strategy.Promoted {
		t.Fatalf("an identical release ended %s: %s", st.Rollout.Detail.Phase, st.Rollout.Detail.Reason)
	}
	if _, failed := c.snapshot(); len(failed) > 0 {
		t.Fatalf("%d requests failed, first %s", len(failed), failed[0])
	}
}

func TestLatencyRegressionIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "slow")
	checks := "    - name: latency\n      compare: {metric: latencyP99, maxIncrease: 20ms}\n"
	st, c := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_LATENCY: 150ms", analysisOf(checks), true)
	c.stop()
	wantRollBack(t, st, strategy.TriggerAnalysis, "check latency failed")
}

func TestPanicLinesInTheLogAreRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "panics")
	checks := "    - name: panics\n      logs: {match: 'panic|FATAL', max: 0}\n"
	st, _ := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_PANIC_EVERY: 300ms", analysisOf(checks), false)
	wantRollBack(t, st, strategy.TriggerAnalysis, "panic: simulated failure")
}

func TestMemoryGrowthIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "mem")
	checks := "    - name: memory\n      resources: {maxRSS: 48Mi}\n"
	st, _ := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_MEMORY_GROWTH: 32Mi", analysisOf(checks), false)
	wantRollBack(t, st, strategy.TriggerAnalysis, "of memory, more than 48.0 MiB")
}

func TestCrashLoopIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "crash")
	st, _ := releaseAndWait(t, in, a, "canary: {steps: [{setWeight: 20}, {pause: {}}]}", "FAULT_CRASH_AFTER: 200ms", "", false)
	wantRollBack(t, st, strategy.TriggerCrashLoop, "exit status 1")
}

func TestFailingLivenessIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "stuck")
	in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
	path := a.manifest(t, 2, "canary: {steps: [{setWeight: 20}, {pause: {}}]}", "FAULT_UNHEALTHY_AFTER: 300ms")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "probes:\n", "probes:\n  liveness: {http: /livez, period: 100ms, failureThreshold: 2}\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := in.c.ApplyFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitRollout(t, a.name, res.Rollout)
	wantRollBack(t, st, strategy.TriggerLiveness, "liveness")
}

func TestJourneyAndWebhookFailuresAreRolledBack(t *testing.T) {
	var calls atomic.Int64
	judgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Revision int `json:"revision"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		fmt.Fprintf(w, `{"verdict": "fail", "reason": "revision %d is on the deny list"}`, req.Revision)
	}))
	defer judgeSrv.Close()
	t.Run("webhook", func(t *testing.T) {
		in := start(t, t.TempDir())
		a := newApp(t, "hook")
		checks := "    - name: external\n      webhook: {url: " + judgeSrv.URL + "/judge}\n"
		st, _ := releaseAndWait(t, in, a, canaryAnalyze, "V: two", analysisOf(checks), false)
		wantRollBack(t, st, strategy.TriggerAnalysis, "revision 2 is on the deny list")
		if calls.Load() == 0 {
			t.Fatal("the webhook was never called")
		}
	})
	t.Run("journey", func(t *testing.T) {
		in := start(t, t.TempDir())
		a := newApp(t, "walk")
		checks := "    - name: home\n      journey:\n        steps:\n          - {name: home, path: /, expectBody: 'revision 1 '}\n"
		st, _ := releaseAndWait(t, in, a, "blueGreen: {}", "V: two", analysisOf(checks), false)
		wantRollBack(t, st, strategy.TriggerAnalysis, "step 1 (home)")
	})
}

func TestFailureInsideTheWindowSwitchesBackToTheWarmRevision(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "window")
	in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
	c := startClients(t, a.listen, 4)
	// A blue-green switch takes no canary traffic before it: the error
	// check can only see the new revision fail after promotion. The
	// previous revision keeps the default holdback of the traffic through
	// the window, so the same two-sample test goes on comparing both
	// revisions at the same moments and fails the new one; the warm
	// revision takes the traffic back.
	// The probe forgives a second of timeouts: on a busy machine the
	// package's 100 ms probes can time the new revision out, and the
	// window's readiness rule would roll back first.
	p := a.manifestWith(t, 2, "blueGreen: {}", "FAULT_ERROR_RATE: '0.3'", analysisOf(errorsCheck))
	rewrite(t, p, "readiness: {http: /healthz, period: 100ms, failureThreshold: 2}",
		"readiness: {http: /healthz, period: 250ms, timeout: 250ms, failureThreshold: 4}")
	res, err := in.c.ApplyFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var st controller.AppStatus
	waitFor(t, 90*time.Second, "a rollback inside the window", func() bool {
		st, err = in.c.App(context.Background(), a.name)
		if err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID == res.Rollout && st.Rollout.Detail.Phase == strategy.RolledBack
	})
	c.stop()
	wantRollBack(t, st, strategy.TriggerAnalysis, "check errors failed: ")
	if !strings.Contains(st.Rollout.Detail.Reason, "inside the rollback window") {
		t.Fatalf("reason %q does not say it was inside the window", st.Rollout.Detail.Reason)
	}
	if !st.Rollout.Detail.InWindow {
		t.Fatalf("rollback not marked as inside the window: %+v", st.Rollout.Detail)
	}
	evs, _ := in.c.Events(context.Background(), a.name, 0)
	if !hasEvent(evs, "rollout.promoted") {
		t.Fatal("no promotion before the rollback")
	}
	for _, e := range evs {
		if e.Type == "rollout.promoted" && e.Rollout == res.Rollout && !strings.Contains(e.Message, "held back") {
			t.Fatalf("promotion %q does not say what is held back", e.Message)
		}
	}

	// The warm revision answered at once: its replicas never restarted.
	for _, r := range st.Replicas {
		if r.Revision == 1 && r.Restarts != 0 {
			t.Fatalf("replica %+v restarted", r)
		}
	}
}

func hasEvent(evs []store.Event, typ string) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func TestRollbackSLOAndNotifications(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ce map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ce); err == nil {
			mu.Lock()
			got = append(got, ce)
			mu.Unlock()
		}
	}))
	defer rcv.Close()
	in := start(t, t.TempDir())
	a := newApp(t, "slo")
	extra := analysisOf("    - name: panics\n      logs: {match: 'panic', max: 0}\n") +
		"notifications:\n  - {url: " + rcv.URL + "/hook, events: [rollout.rolled-back, rollout.slo-breached]}\n"
	path := a.manifestWith(t, 2, canaryAnalyze, "FAULT_PANIC_EVERY: 200ms", extra)
	b, _ := os.ReadFile(path)
	// A detection SLO no rollback can meet: the breach is recorded.
	text := strings.Replace(string(b), "  window: 1m\n", "  window: 1m\n  slo: {timeToDetect: 1ms, timeToRollback: 1h}\n", 1)
	in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
	os.WriteFile(path, []byte(text), 0o644)
	res, err := in.c.ApplyFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitRollout(t, a.name, res.Rollout)
	wantRollBack(t, st, strategy.TriggerAnalysis, "check panics failed")
	types := func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]bool{}
		for _, ce := range got {
			m[fmt.Sprint(ce["type"])] = true
		}
		return m
	}
	waitFor(t, 15*time.Second, "both notifications", func() bool {
		m := types()
		return m["dev.lastgood.rollout.rolled-back"] && m["dev.lastgood.rollout.slo-breached"]
	})
	waitFor(t, 10*time.Second, "the deliveries in the event log", func() bool {
		evs, _ := in.c.Events(context.Background(), a.name, 0)
		n := 0
		for _, e := range evs {
			if e.Type == "notification.delivered" {
				n++
			}
		}
		return n >= 2 && hasEvent(evs, incident.TypeSLOBreached)
	})
}

func TestUnwritableIncidentsStillRollBack(t *testing.T) {
	data := t.TempDir()
	// incidents is a file: no bundle can be written under it.
	if err := os.WriteFile(filepath.Join(data, "incidents"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := start(t, data)
	a := newApp(t, "nodir")
	checks := "    - name: panics\n      logs: {match: 'panic', max: 0}\n"
	st, _ := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_PANIC_EVERY: 200ms", analysisOf(checks), false)
	wantRollBack(t, st, strategy.TriggerAnalysis, "check panics failed")
	waitFor(t, 10*time.Second, "the incident.failed event", func() bool {
		evs, _ := in.c.Events(context.Background(), a.name, 0)
		return hasEvent(evs, incident.TypeFailed)
	})
}
