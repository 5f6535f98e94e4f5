package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// The default checks, end to end: a manifest without an analysis section,
// the real sample app, real clients whose traffic has two routes.

// defaultsCanary is a canary whose analyze step lets an identical
// release be promoted by the default checks' data.
const defaultsCanary = "canary: {steps: [{setWeight: 50}, {analyze: {for: 30s, maxWait: 2m}}]}"

// heldCanary holds a bad release at 50% until its checks roll it back:
// how soon the rare route's evidence suffices depends on how many
// requests a busy machine serves, not on a clock, so the test waits for
// the outcome rather than giving the checks a fixed time.
const heldCanary = "canary: {steps: [{setWeight: 50}, {pause: {}}]}"

// routeClients sends GET / and, for one request in every 200, GET
// /items/N, until stopped; it counts the answers per status.
type routeClients struct {
	stop   func()
	mu     sync.Mutex
	status map[int]int
	items  atomic.Int64
}

func startRouteClients(t *testing.T, addr string, workers int) *routeClients {
	t.Helper()
	c := &routeClients{status: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				path := "/"
				if i := n.Add(1); i%200 == 0 {
					path = fmt.Sprintf("/items/%d", i)
					c.items.Add(1)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					c.mu.Lock()
					c.status[res.StatusCode]++
					c.mu.Unlock()
				}
			}
		})
	}
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait(); hc.CloseIdleConnections() }) }
	t.Cleanup(c.stop)
	return c
}

// defaultsRelease releases v1, then v2 with env and no analysis section
// under route traffic, and waits for v2's rollout to end and, once
// promoted, for its rollback window (1m) to pass: a rare route's
// failures may be caught either side of the promotion, and an identical
// release must not be rolled back on either.
func defaultsRelease(t *testing.T, name, strat, env string) (controller.AppStatus, *routeClients) {
	t.Helper()
	in := start(t, t.TempDir())
	a := newApp(t, name)
	in.applyWait(t, a.manifest(t, 1, "blueGreen: {}", ""))
	c := startRouteClients(t, a.listen, 4)
	// A patient progress deadline: four clients keep a busy machine
	// busier while the canary starts.
	file := a.manifest(t, 1, strat, env)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// And patient probes: a 100ms probe timeout fails under -race load
	// and would roll the release back by readiness inside the window.
	text := strings.Replace(string(b), "progressDeadline: 3s", "progressDeadline: 1m", 1)
	text = strings.Replace(text, "readiness: {http: /healthz, period: 100ms, failureThreshold: 2}", "readiness: {http: /healthz, period: 1s, timeout: 1s, failureThreshold: 5}", 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := in.c.ApplyFile(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "lastgood's default checks (errors, status-mix, latency, routes") || !strings.Contains(res.Message, "analysis: {checks: []}") {
		t.Errorf("apply said %q; want it to name the default checks and how to turn them off", res.Message)
	}
	var st controller.AppStatus
	shown := false
	// Generous: the analyze step waits for data on a busy machine.
	waitFor(t, 5*time.Minute, fmt.Sprintf("rollout #%d to end", res.Rollout), func() bool {
		var err error
		if st, err = in.c.App(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		if st.Rollout == nil || st.Rollout.ID != res.Rollout {
			return false
		}
		shown = shown || strings.Join(st.Rollout.DefaultChecks, ",") == "errors,status-mix,latency,routes"
		d := st.Rollout.Detail
		return d.Phase.Final() && (d.Phase != strategy.Promoted || time.Now().After(d.WarmUntil.Add(time.Second)))
	})
	c.stop()
	if !shown {
		t.Errorf("status never named the default checks: %+v", st.Rollout)
	}
	return st, c
}

func TestDefaultChecksRollBackAFailingRareRoute(t *testing.T) {
	t.Parallel() // each waits minutes on its own app; together they take the longest one's time
	st, c := defaultsRelease(t, "rare", heldCanary, "FAULT_FAIL_PATH: /items/")
	wantRollBack(t, st, strategy.TriggerAnalysis, "check routes failed")
	if !strings.Contains(st.Rollout.Detail.Reason, "route /items/:id") {
		t.Errorf("reason %q does not name the route", st.Rollout.Detail.Reason)
	}
	if c.items.Load() == 0 {
		t.Fatal("no request reached /items/")
	}
}

func TestDefaultChecksRollBackA404Release(t *testing.T) {
	t.Parallel() // each waits minutes on its own app; together they take the longest one's time
	st, c := defaultsRelease(t, "notfound", heldCanary, "FAULT_NOT_FOUND: '1'")
	wantRollBack(t, st, strategy.TriggerAnalysis, "check status-mix failed")
	if !strings.Contains(st.Rollout.Detail.Reason, "4xx share") {
		t.Errorf("reason %q does not name the 4xx share", st.Rollout.Detail.Reason)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status[404] == 0 {
		t.Fatalf("answers %v: the canary's 404s were never seen", c.status)
	}
}

func TestDefaultChecksPromoteAnIdenticalRelease(t *testing.T) {
	t.Parallel() // each waits minutes on its own app; together they take the longest one's time
	st, c := defaultsRelease(t, "same", defaultsCanary, "GREETING: hello")
	if d := st.Rollout.Detail; d.Phase != strategy.Promoted {
		t.Fatalf("rollout ended %s (%s: %s); want promoted", d.Phase, d.Trigger, d.Reason)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status[200] == 0 || c.items.Load() == 0 {
		t.Fatalf("answers %v, %d item requests: want both routes served", c.status, c.items.Load())
	}
}
