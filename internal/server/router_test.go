package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/strategy"
)

// TestRouterDefaultsMatchTheManifest: `router: {}` means what no router
// section means.
func TestRouterDefaultsMatchTheManifest(t *testing.T) {
	m, err := manifest.Parse("app.yaml", []byte("name: web\nlisten: 127.0.0.1:8080\nrun: {command: [./web]}\nrouter: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := routerLimits(m.Router)
	if want := router.DefaultLimits(); got != want {
		t.Errorf("router: {} gives %+v, the router's defaults are %+v", got, want)
	}
	if l := routerLimits(&manifest.Router{}); l.ResponseTimeout >= 0 {
		t.Errorf("responseTimeout: 0s gives %v, want no timeout (negative)", l.ResponseTimeout)
	}
}

// impatientClients send requests to addr until stopped, each giving up
// after timeout, and count the answers.
type impatientClients struct {
	mu      sync.Mutex
	status  map[int]int
	gaveUp  int
	stopped func()
}

func startImpatientClients(t *testing.T, addr string, workers int, timeout time.Duration) *impatientClients {
	c := &impatientClients{status: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				if err != nil {
					c.gaveUp++
				} else {
					c.status[res.StatusCode]++
				}
				c.mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	var once sync.Once
	c.stopped = func() { once.Do(func() { cancel(); wg.Wait(); hc.CloseIdleConnections() }) }
	t.Cleanup(c.stopped)
	return c
}

// TestHangingReleaseIsRolledBack: a release whose replicas are ready but
// never answer in time is rolled back, whether the router's response
// timeout answers 504 or the clients give up first (499s counted as the
// revision's failures), and the incident says why the router failed the
// requests.
func TestHangingReleaseIsRolledBack(t *testing.T) {
	for _, tt := range []struct {
		name, router string
		clientWait   time.Duration
		status       int
		reason       string
	}{
		{"response timeout", "router: {responseTimeout: 500ms}\n", 10 * time.Second, 504, "no response within 500ms"},
		{"clients give up", "", 700 * time.Millisecond, 499, "the client left after waiting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := start(t, t.TempDir())
			a := newApp(t, "hang")
			in.applyWait(t, a.manifest(t, 2, "blueGreen: {}", ""))
			c := startImpatientClients(t, a.listen, 6, tt.clientWait)
			strat := "canary: {steps: [{setWeight: 20}, {analyze: {for: 2m}}]}"
			// A busy machine may take more than the helper's 3s to start
			// the canary; this test is about what happens after.
			path := a.manifestWith(t, 2, strat, "FAULT_LATENCY: 60s", analysisOf(errorsCheck)+tt.router)
			rewrite(t, path, "progressDeadline: 20s", "progressDeadline: 1m")
			res, err := in.c.ApplyFile(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			var st controller.AppStatus
			waitFor(t, 90*time.Second, "the rollout to end", func() bool {
				st, err = in.c.App(context.Background(), a.name)
				if err != nil {
					t.Fatal(err)
				}
				return st.Rollout != nil && st.Rollout.ID == res.Rollout && strategy.Phase(st.Rollout.Phase).Final()
			})
			c.stopped()
			wantRollBack(t, st, strategy.TriggerAnalysis, "check errors failed")

			stats, err := in.c.Stats(context.Background(), a.name)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(stats, func(s router.RevisionStats) bool { return s.Revision == 2 })
			if i < 0 || stats[i].Errors == 0 || stats[i].ProxyErrors == 0 {
				t.Fatalf("revision 2's router stats %+v: want its failures counted", stats)
			}
			pe := stats[i].RecentProxyErrors
			if len(pe) == 0 || !slices.ContainsFunc(pe, func(e router.ProxyError) bool { return e.Status == tt.status && strings.Contains(e.Error, tt.reason) }) {
				t.Fatalf("proxy errors %+v, want %d with %q", pe, tt.status, tt.reason)
			}

			// The events are written a moment after the router counted
			// the errors (the reporter looks every second).
			type eventData struct {
				Count   int                 `json:"count"`
				Samples []router.ProxyError `json:"samples"`
			}
			var seen []string
			found := func() bool {
				evs, err := in.c.Events(context.Background(), a.name, 0)
				if err != nil {
					t.Fatal(err)
				}
				seen = seen[:0]
				for _, e := range evs {
					if e.Type != proxyErrorEvent || e.Revision != 2 {
						continue
					}
					seen = append(seen, e.Message)
					var data eventData
					if err := json.Unmarshal(e.Data, &data); err != nil {
						t.Fatalf("event data %s: %v", e.Data, err)
					}
					if data.Count > 0 && slices.ContainsFunc(data.Samples, func(pe router.ProxyError) bool {
						return pe.Status == tt.status && strings.Contains(pe.Error, tt.reason)
					}) {
						return true
					}
				}
				return false
			}
			for deadline := time.Now().Add(20 * time.Second); !found(); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s event of revision 2 with a %d sample saying %q; its events: %q", proxyErrorEvent, tt.status, tt.reason, seen)
				}
			}

			id := incident.ID(a.name, st.Rollout.Number)
			var inc *incident.Incident
			waitFor(t, 10*time.Second, "the incident bundle", func() bool {
				inc, err = incident.Load(filepath.Join(in.dir, "incidents"), id)
				return err == nil
			})
			k := slices.IndexFunc(inc.ProxyErrors, func(p incident.ProxyErrors) bool { return p.Revision == 2 })
			if k < 0 || inc.ProxyErrors[k].Count == 0 || !slices.ContainsFunc(inc.ProxyErrors[k].Samples, func(e router.ProxyError) bool { return e.Status == tt.status }) {
				t.Fatalf("incident proxy errors %+v, want revision 2's %ds", inc.ProxyErrors, tt.status)
			}
		})
	}
}

// TestProxyErrorEventsAreRateLimited: one event per revision per period,
// with the count since the last and only the samples not yet reported.
func TestProxyErrorEventsAreRateLimited(t *testing.T) {
	tr := newTraffic(t.Context())
	t.Cleanup(tr.wait)
	addr := freeAddr(t)
	if err := tr.Listen("web", addr); err != nil {
		t.Fatal(err)
	}
	tr.Route("web", controller.Table{Routes: []controller.Route{{Revision: 3, Weight: 1, Backends: []string{freeAddr(t)}}}})
	var events []controller.ReplicaEvent
	p := newProxyErrors(tr, func(e controller.ReplicaEvent) { events = append(events, e) })
	fail := func(n int) {
		for range n {
			res, err := http.Get("http://" + addr + "/x?token=secret")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 502 {
				t.Fatalf("status %d, want 502 from a dead replica", res.StatusCode)
			}
		}
	}
	now := time.Now()
	p.look(now)
	if len(events) != 0 {
		t.Fatalf("events before any failure: %+v", events)
	}
	fail(3)
	p.look(now)
	fail(2)
	p.look(now.Add(p.Every / 2))
	if len(events) != 1 || events[0].Data["count"] != uint64(3) || len(events[0].Data["samples"].([]router.ProxyError)) != 3 ||
		events[0].App != "web" || events[0].Revision != 3 || events[0].Type != proxyErrorEvent {
		t.Fatalf("after 3 failures and 2 more within the period: %+v", events)
	}
	if msg := events[0].Message; !strings.Contains(msg, "GET /x → 502") || strings.Contains(msg, "secret") {
		t.Errorf("message %q: want the last request without its query", msg)
	}
	p.look(now.Add(p.Every))
	if len(events) != 2 || events[1].Data["count"] != uint64(2) || len(events[1].Data["samples"].([]router.ProxyError)) != 2 {
		t.Fatalf("after the period: %+v", events)
	}
	p.look(now.Add(3 * p.Every))
	if len(events) != 2 {
		t.Fatalf("an event without new failures: %+v", events[2:])
	}
}
