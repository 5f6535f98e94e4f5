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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// startPaced sends rate requests a second to addr, as steady clients
// would, until stopped; answers are counted as startClients counts them.
func startPaced(t *testing.T, addr string, rate int) *clients {
	t.Helper()
	c := &clients{byRev: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				switch {
				case err != nil:
					c.failed = append(c.failed, err.Error())
				case res.StatusCode != 200:
					c.failed = append(c.failed, res.Status)
				default:
					rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
					c.byRev[rev]++
				}
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			})
		}
	})
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait(); hc.CloseIdleConnections() }) }
	t.Cleanup(c.stop)
	return c
}

// waitEnd waits up to d for rollout id to end (or to pause, when paused
// is set) and returns the app's status.
func (in *instance) waitEnd(t *testing.T, app string, id int64, d time.Duration, paused bool) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, d, fmt.Sprintf("rollout #%d to end", id), func() bool {
		var err error
		if st, err = in.c.App(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		p := strategy.Phase(st.Rollout.Phase)
		return st.Rollout.ID == id && (p.Final() || paused && p == strategy.Paused)
	})
	return st
}

// robust writes a manifest like manifestWith with probes and a progress
// deadline that a busy machine does not trip: these tests are about the
// stable revision, not about probe timeouts.
func (a *app) robust(t *testing.T, replicas int, strategy, env, extra string) string {
	t.Helper()
	p := a.manifestWith(t, replicas, strategy, env, extra)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "readiness: {http: /healthz, period: 100ms, failureThreshold: 2}",
		"readiness: {http: /healthz, period: 200ms, timeout: 200ms, failureThreshold: 10}", 1)
	text = strings.Replace(text, "progressDeadline: 20s", "progressDeadline: 1m", 1)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// events returns the app's events of one type.
func (in *instance) eventsOf(t *testing.T, app, typ string) []store.Event {
	t.Helper()
	evs, err := in.c.Events(context.Background(), app, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

const canarySteps = "canary: {steps: [{setWeight: 10}, {analyze: {for: 30s}}, {setWeight: 50}, {analyze: {for: 30s}}]}"

// The case: a canary with 3% errors against a stable that
// crash-loops every 12 s during the rollout. Compared with a failing
// baseline the canary looks no worse, so it used to be promoted; now the
// stable's own health holds the rollout.
func TestCanaryIsNotPromotedAgainstACrashLoopingStable(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "crashy")
	c := startPaced(t, a.listen, 150)
	in.applyWait(t, a.robust(t, 1, "blueGreen: {}", "FAULT_CRASH_AFTER: 12s", ""))
	time.Sleep(5 * time.Second) // the stable's history, healthy, before the rollout
	res, err := in.c.ApplyFile(context.Background(), a.robust(t, 1, canarySteps, "FAULT_ERROR_RATE: '0.03'", analysisOf(errorsCheck)))
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitEnd(t, a.name, res.Rollout, 3*time.Minute, true)
	d := st.Rollout.Detail
	if d.Phase == strategy.Promoted {
		t.Fatalf("promoted a 3%%-error canary against a crash-looping stable")
	}
	if d.Phase == strategy.Paused {
		if d.PauseReason != strategy.PauseUnhealthy || !strings.Contains(d.TargetTrouble, "revision 1") {
			t.Fatalf("paused %s: %q", d.PauseReason, d.TargetTrouble)
		}
		if evs := in.eventsOf(t, a.name, "rollout.target-unhealthy"); len(evs) == 0 {
			t.Fatal("held without a rollout.target-unhealthy event")
		}
		// Held, it stays held: the checks judge on, nothing promotes it.
		time.Sleep(3 * time.Second)
		if st, _ = in.c.App(context.Background(), a.name); st.Rollout.Detail.Phase == strategy.Promoted {
			t.Fatal("promoted while held")
		}
	} else if !strings.Contains(d.Reason, "check errors failed") {
		// Rolling it back is fine too, as long as the canary's own check did.
		t.Fatalf("ended %s (%s): %s", d.Phase, d.Trigger, d.Reason)
	}
	c.stop()
	byRev, failed := c.snapshot()
	t.Logf("%s (%s): %s %s; answers %v, %d failed", d.Phase, d.PauseReason, d.Reason, d.TargetTrouble, byRev, len(failed))
}

// The same canary against a healthy stable is rolled back by its check.
func TestThreePercentCanaryAgainstAHealthyStableIsRolledBack(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "healthy")
	c := startPaced(t, a.listen, 150)
	in.applyWait(t, a.robust(t, 1, "blueGreen: {}", "", ""))
	time.Sleep(5 * time.Second)
	res, err := in.c.ApplyFile(context.Background(), a.robust(t, 1, canarySteps, "FAULT_ERROR_RATE: '0.03'", analysisOf(errorsCheck)))
	if err != nil {
		t.Fatal(err)
	}
	var st controller.AppStatus
	waitFor(t, 3*time.Minute, "a rollback", func() bool {
		if st, err = in.c.App(context.Background(), a.name); err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID == res.Rollout && st.Rollout.Detail.Phase == strategy.RolledBack
	})
	c.stop()
	d := st.Rollout.Detail
	if d.Trigger != strategy.TriggerAnalysis || !strings.Contains(d.Reason, "check errors failed") || d.TargetTrouble != "" {
		t.Fatalf("rolled back by %s: %s (target: %q)", d.Trigger, d.Reason, d.TargetTrouble)
	}
	if evs := in.eventsOf(t, a.name, "rollout.target-unhealthy"); len(evs) != 0 {
		t.Fatalf("a healthy stable was reported unhealthy: %+v", evs)
	}
}

// A dependency both revisions share goes down during the rollout: both
// revisions degrade together. The rollout is held, never promoted, with a
// verdict that says so; an abort's incident records it; the finding is
// counted in /metrics and delivered to a receiver that lists it.
func TestBothRevisionsDegradedTogetherHoldTheRollout(t *testing.T) {
	var mu sync.Mutex
	var got []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ce struct{ Type string }
		if json.NewDecoder(r.Body).Decode(&ce) == nil {
			mu.Lock()
			got = append(got, ce.Type)
			mu.Unlock()
		}
	}))
	defer rcv.Close()
	in := start(t, t.TempDir())
	a := newApp(t, "dep")
	dep := filepath.Join(t.TempDir(), "down")
	env := "FAULT_DEPENDENCY: " + dep
	c := startPaced(t, a.listen, 150)
	in.applyWait(t, a.robust(t, 2, "blueGreen: {}", env, ""))
	time.Sleep(3 * time.Second) // history
	notify := "notifications:\n  - {url: " + rcv.URL + "/hook, events: [rollout.target-unhealthy]}\n"
	res, err := in.c.ApplyFile(context.Background(), a.robust(t, 2, "canary: {steps: [{setWeight: 50}, {analyze: {for: 10m}}]}",
		env+", V: two", analysisOf(errorsCheck)+notify))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the canary's traffic", func() bool {
		byRev, _ := c.snapshot()
		return byRev[2] > 200
	})
	if err := os.WriteFile(dep, nil, 0o644); err != nil { // the dependency goes down
		t.Fatal(err)
	}
	var st controller.AppStatus
	waitFor(t, time.Minute, "both revisions found degraded", func() bool {
		if st, err = in.c.App(context.Background(), a.name); err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID != res.Rollout || st.Rollout.Detail.TargetBoth || st.Rollout.Detail.Phase.Final()
	})
	d := st.Rollout.Detail
	if d.Phase != strategy.Paused || d.PauseReason != strategy.PauseUnhealthy || !strings.Contains(d.TargetTrouble, "error rate") {
		t.Fatalf("rollout %s (%s, %s): %q", d.Phase, d.PauseReason, d.Reason, d.TargetTrouble)
	}
	evs := in.eventsOf(t, a.name, "rollout.target-unhealthy")
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, strategy.Both) {
		t.Fatalf("target-unhealthy events %+v: want the last to say %q", evs, strategy.Both)
	}
	waitFor(t, 15*time.Second, "the notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, "dev.lastgood.rollout.target-unhealthy")
	})
	waitFor(t, 10*time.Second, "the finding in /metrics", func() bool {
		res, err := http.Get(in.c.Base + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return regexp.MustCompile(`lastgood_target_unhealthy_total\{app="dep"\} [1-9]`).Match(b)
	})
	// A person aborts it: the incident carries the finding.
	if _, err := in.c.Action(context.Background(), a.name, "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(dep)
	c.stop()
	var inc *incident.Incident
	waitFor(t, 15*time.Second, "the abort's incident", func() bool {
		inc, err = in.c.Incident(context.Background(), incident.ID(a.name, st.Rollout.Number))
		return err == nil
	})
	if len(inc.Target) == 0 || !strings.Contains(strings.Join(inc.Target, " "), strategy.Both) {
		t.Fatalf("incident target findings %q", inc.Target)
	}
}

// A release that fails outright while the revision it would return to is
// failing too: the rollback still happens (the new revision was shown to
// fail), and says that its target is unhealthy. A rolling update is never
// held (it replaces the stable), so the finding is made at the rollback.
func TestRollbackToAFailingTargetSaysSo(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "target")
	dep := filepath.Join(t.TempDir(), "down")
	c := startPaced(t, a.listen, 150)
	in.applyWait(t, a.robust(t, 3, "blueGreen: {}", "FAULT_DEPENDENCY: "+dep, ""))
	time.Sleep(3 * time.Second) // history
	if err := os.WriteFile(dep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Each new replica takes 2 s to start: the update lasts long enough
	// for its first replica's failures to be seen.
	checks := "    - name: slo\n      threshold: {metric: errorRate, max: 0.2}\n"
	// The finding is notified with the default events.
	var mu sync.Mutex
	var told []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ce struct {
			Type string `json:"type"`
		}
		if json.NewDecoder(r.Body).Decode(&ce) == nil {
			mu.Lock()
			told = append(told, ce.Type)
			mu.Unlock()
		}
	}))
	defer rcv.Close()
	res, err := in.c.ApplyFile(context.Background(), a.robust(t, 3, "rolling: {maxSurge: 1, maxUnavailable: 0}",
		"FAULT_ERROR_RATE: '1', FAULT_START_DELAY: 2s", analysisOf(checks)+"notifications:\n  - {url: "+rcv.URL+"/hook}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var st controller.AppStatus
	waitFor(t, time.Minute, "the rollback", func() bool {
		if st, err = in.c.App(context.Background(), a.name); err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID == res.Rollout && st.Rollout.Detail.Phase.Final()
	})
	c.stop()
	d := st.Rollout.Detail
	if d.Phase != strategy.RolledBack || !strings.Contains(d.Reason, "check slo failed") || !strings.Contains(d.Reason, "revision 1, returned to, is unhealthy too") {
		t.Fatalf("ended %s: %s", d.Phase, d.Reason)
	}
	evs := in.eventsOf(t, a.name, "rollout.target-unhealthy")
	var report strategy.TargetReport
	if len(evs) != 1 || json.Unmarshal(evs[0].Data, &report) != nil || report.When != "rollback" || report.Revision != 1 {
		t.Fatalf("target-unhealthy events %+v, want one, at the rollback, about revision 1", evs)
	}
	back := in.eventsOf(t, a.name, "rollout.rolled-back")
	if len(back) != 1 || !strings.Contains(back[0].Message, "is unhealthy too") {
		t.Fatalf("rolled-back events %+v", back)
	}
	waitFor(t, 30*time.Second, "the target-unhealthy notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(told, "dev.lastgood.rollout.target-unhealthy") && slices.Contains(told, "dev.lastgood.rollout.rolled-back")
	})
}
