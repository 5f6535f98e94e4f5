package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// child is a lastgood running as a child process of the test binary, so
// that the test can kill it with SIGKILL.
type child struct {
	cmd *exec.Cmd
	in  *instance
}

// startReady starts a child lastgood on data and waits until it has
// recovered every app (/readyz).
func startReady(t *testing.T, data string) *child {
	t.Helper()
	cmd, addr := startChild(t, data)
	in := &instance{c: &api.Client{Base: "http://" + addr}, dir: data}
	waitFor(t, 20*time.Second, "readyz", func() bool {
		res, err := http.Get(in.c.Base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return &child{cmd: cmd, in: in}
}

// kill9 kills the child lastgood with SIGKILL and waits until it and
// every replica it ran are gone.
func (c *child) kill9(t *testing.T, app string) {
	t.Helper()
	st, err := c.in.c.App(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	waitFor(t, 10*time.Second, "every replica to die with lastgood", func() bool {
		for _, r := range st.Replicas {
			if r.PID != 0 && alive(r.PID) {
				return false
			}
		}
		return true
	})
}

// restartManifest is the test app with a readiness probe, a progress
// deadline and a window generous enough for a busy machine: the probe
// forgives a second of timeouts (at a load average of 35 on 2 cores, the
// package's 100 ms probes sometimes time both replicas of a revision out
// at once, and the window's readiness rule rolls back a good release).
func restartManifest(t *testing.T, a *app, strategy, env string) string {
	t.Helper()
	p := a.manifest(t, 2, strategy, env)
	rewrite(t, p, "readiness: {http: /healthz, period: 100ms, failureThreshold: 2}",
		"readiness: {http: /healthz, period: 250ms, timeout: 250ms, failureThreshold: 4}")
	rewrite(t, p, "progressDeadline: 20s", "progressDeadline: 30s")
	rewrite(t, p, "window: 1m", "window: 5m")
	return p
}

func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKill9InsideTheWindowKeepsAGoodRelease promotes a good release and
// kills lastgood with SIGKILL inside its rollback window, three times:
// each time the restarted lastgood finds the promoted revision's replicas
// starting (none ready), gives them their readiness grace, records the
// decision as controller.recovered, and keeps the release promoted.
func TestKill9InsideTheWindowKeepsAGoodRelease(t *testing.T) {
	data := t.TempDir()
	c := startReady(t, data)
	a := newApp(t, "keep")
	c.in.applyWait(t, restartManifest(t, a, blueGreen, "V: one"))
	if st := c.in.applyWait(t, restartManifest(t, a, blueGreen, "V: two")); st.Stable != 2 {
		t.Fatalf("revision 2 not promoted: %+v", st.Rollout.Detail)
	}
	for round := 1; round <= 3; round++ {
		c.kill9(t, a.name)
		c = startReady(t, data)
		waitFor(t, 20*time.Second, "revision 2 to serve again", func() bool {
			rev, err := revisionAt(a.listen)
			return err == nil && rev == 2
		})
		// The grace ends with the first ready replica; after it, a look
		// finds every replica of revision 2 ready.
		var st controller.AppStatus
		waitFor(t, 20*time.Second, "the readiness grace to end", func() bool {
			var err error
			if st, err = c.in.c.App(context.Background(), a.name); err != nil {
				t.Fatal(err)
			}
			return st.Rollout.Detail.Phase != strategy.Promoted || st.Rollout.Detail.Recovered.IsZero()
		})
		if d := st.Rollout.Detail; d.Phase != strategy.Promoted || st.Stable != 2 {
			t.Fatalf("round %d: after kill -9 inside the window the release is %s by %q: %s", round, d.Phase, d.Trigger, d.Reason)
		}
		evs, err := c.in.c.Events(context.Background(), a.name, 0)
		if err != nil {
			t.Fatal(err)
		}
		var recovered []store.Event
		for _, e := range evs {
			if e.Type == strategy.EventRecovered {
				recovered = append(recovered, e)
			}
		}
		if len(recovered) != round || !strings.Contains(recovered[round-1].Message, "it stays promoted") ||
			!strings.Contains(recovered[round-1].Message, "readiness grace") {
			t.Fatalf("round %d: controller.recovered events %+v", round, recovered)
		}
	}
	audit, err := c.in.c.Audit(context.Background())
	if err != nil || !audit.OK() {
		t.Fatalf("audit after kill -9: %+v %v", audit, err)
	}
}

// TestReplicasExitingInsideTheWindowRollBack promotes a release whose
// replicas all exit 5 s after they start, with and without a kill -9 of
// lastgood after the promotion: the restarts since promotion roll it back
// inside the window, whether or not a look sees no replica ready.
func TestReplicasExitingInsideTheWindowRollBack(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill9=%v", kill), func(t *testing.T) {
			data := t.TempDir()
			c := startReady(t, data)
			a := newApp(t, "exits")
			c.in.applyWait(t, restartManifest(t, a, blueGreen, "V: one"))
			st := c.in.applyWait(t, restartManifest(t, a, blueGreen, "FAULT_CRASH_AFTER: 5s"))
			if st.Rollout.Detail.Phase != strategy.Promoted {
				t.Fatalf("revision 2 was not promoted: %+v", st.Rollout.Detail)
			}
			if kill {
				c.kill9(t, a.name)
				c = startReady(t, data)
			}
			st = c.in.waitWindowRollBack(t, a.name, st.Rollout.ID)
			// Which rule decides depends on whether a look lands while both
			// replicas are down: readiness if one does, the restarts since
			// promotion otherwise (TestWindowAfterARestart in internal/strategy covers each).
			d := st.Rollout.Detail
			if !d.InWindow || st.Stable != 1 {
				t.Fatalf("rolled back by %q (inWindow %v, stable %d): %s", d.Trigger, d.InWindow, st.Stable, d.Reason)
			}
			switch d.Trigger {
			case strategy.TriggerReadiness:
			case strategy.TriggerCrashLoop:
				if !strings.Contains(d.Reason, "exit status 1") {
					t.Fatalf("reason %q does not say how the replicas exited", d.Reason)
				}
			default:
				t.Fatalf("rolled back by %q: %s", d.Trigger, d.Reason)
			}
			if rev, err := revisionAt(a.listen); err != nil || rev != 1 {
				t.Fatalf("after the rollback revision %d answers (%v)", rev, err)
			}
		})
	}
}

// waitWindowRollBack waits for rollout id, promoted, to be rolled back
// inside its window.
func (in *instance) waitWindowRollBack(t *testing.T, app string, id int64) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, 60*time.Second, fmt.Sprintf("rollout #%d to be rolled back", id), func() bool {
		var err error
		if st, err = in.c.App(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID == id && st.Rollout.Detail.Phase == strategy.RolledBack
	})
	return st
}

// TestRestartFailsNoRequest sends 100 requests a second, half on
// keep-alive connections and half on new ones, to an app while lastgood is
// killed with SIGKILL and started again, three times, inside the window
// of a promoted release (so that both revisions' replicas start again).
// Requests that fail while no lastgood has the app's port bound are the
// time the process is down; every request sent after the new lastgood
// bound it must get a 2xx.
func TestRestartFailsNoRequest(t *testing.T) {
	data := t.TempDir()
	c := startReady(t, data)
	a := newApp(t, "steady")
	c.in.applyWait(t, restartManifest(t, a, blueGreen, "V: one"))
	c.in.applyWait(t, restartManifest(t, a, blueGreen, "V: two"))

	l := startLoad(a.listen)
	defer l.stop()
	time.Sleep(500 * time.Millisecond)
	var downs []down
	for range 3 {
		d := down{killed: time.Now()}
		c.kill9(t, a.name)
		bound := make(chan time.Time, 1)
		go func() { bound <- firstDial(a.listen) }()
		c = startReady(t, data)
		d.bound = <-bound
		downs = append(downs, d)
		waitFor(t, 20*time.Second, "revision 2 to serve again", func() bool {
			rev, err := revisionAt(a.listen)
			return err == nil && rev == 2
		})
		time.Sleep(time.Second)
	}
	sent := l.stop()

	var ok, whileDown, after int
	for _, r := range sent {
		switch {
		case r.err == nil && r.status/100 == 2:
			ok++
		case r.during(downs):
			whileDown++
		default:
			after++
			if after <= 5 {
				t.Errorf("request sent %s after the first kill failed: status %d %q, %v", r.sent.Sub(downs[0].killed).Round(time.Millisecond), r.status, r.body, r.err)
			}
		}
	}
	t.Logf("%d requests: %d answered 2xx, %d failed while lastgood was down (%s), %d failed otherwise",
		len(sent), ok, whileDown, downTimes(downs), after)
	if after > 0 {
		t.Fatalf("%d requests sent while lastgood had the port failed", after)
	}
	if ok < 300 {
		t.Fatalf("only %d requests answered: the load did not run", ok)
	}
	st, err := c.in.c.App(context.Background(), a.name)
	if err != nil || st.Stable != 2 || st.Rollout.Detail.Phase != strategy.Promoted {
		t.Fatalf("after the restarts: %+v %v", st.Rollout, err)
	}
}

// TestRestartHoldsClientsUntilTheDeadline restarts lastgood while the
// stable revision's replicas cannot become ready: a request sent at once
// waits (it is not refused), then gets 503 when the readiness grace (3 s,
// the progress deadline) has passed, which is recorded; once the replicas
// are ready the app answers again.
func TestRestartHoldsClientsUntilTheDeadline(t *testing.T) {
	data := t.TempDir()
	c := startReady(t, data)
	a := newApp(t, "stuck")
	unready := filepath.Join(t.TempDir(), "unready")
	c.in.applyWait(t, a.manifest(t, 2, blueGreen, "FAULT_UNREADY_FILE: "+unready))
	c.kill9(t, a.name)
	if err := os.WriteFile(unready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c = startReady(t, data)
	hc := &http.Client{Timeout: time.Minute}
	res, err := hc.Get("http://" + a.listen + "/")
	if err != nil {
		t.Fatalf("a request during the hold failed: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no ready replica") {
		t.Fatalf("after the deadline: %s %q", res.Status, body)
	}
	// the event is written just after the router starts accepting
	var held store.Event
	waitFor(t, 10*time.Second, "the "+controller.EventNotReadyServing+" event", func() bool {
		evs, err := c.in.c.Events(context.Background(), a.name, 0)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(evs, func(e store.Event) bool { return e.Type == controller.EventNotReadyServing })
		if i >= 0 {
			held = evs[i]
		}
		return i >= 0
	})
	if !strings.Contains(held.Message, "3s after lastgood restarted") {
		t.Fatalf("the event does not name the grace: %q", held.Message)
	}
	os.Remove(unready)
	waitFor(t, 20*time.Second, "revision 1 to answer once ready", func() bool {
		rev, err := revisionAt(a.listen)
		return err == nil && rev == 1
	})
}

// down is one time lastgood was down: from the SIGKILL to the moment the
// new process had the app's port bound.
type down struct{ killed, bound time.Time }

func downTimes(ds []down) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.bound.Sub(d.killed).Round(time.Millisecond).String())
	}
	return strings.Join(out, ", ")
}

// firstDial returns when a TCP connection to addr first succeeds.
func firstDial(addr string) time.Time {
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			now := time.Now()
			conn.Close()
			return now
		}
		time.Sleep(time.Millisecond)
	}
}

// sentRequest is one request of the load.
type sentRequest struct {
	sent, done time.Time
	status     int
	body       string // of a failed answer
	err        error
}

// during reports whether the request was in flight at some time while
// lastgood was down: it failed because the process died under it, or
// because no process had the port.
func (r sentRequest) during(ds []down) bool {
	for _, d := range ds {
		if !r.done.Before(d.killed) && r.sent.Before(d.bound) {
			return true
		}
	}
	return false
}

// load sends a request every 10 ms, alternately on a keep-alive client
// and on a client that dials for every request, without waiting for
// earlier answers.
type load struct {
	stop func() []sentRequest
}

func startLoad(addr string) *load {
	keepAlive := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	fresh := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var out []sentRequest
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			hc := keepAlive
			if i%2 == 1 {
				hc = fresh
			}
			wg.Go(func() {
				r := sentRequest{sent: time.Now()}
				res, err := hc.Get("http://" + addr + "/")
				if err == nil {
					var b []byte
					b, err = io.ReadAll(res.Body)
					res.Body.Close()
					r.status = res.StatusCode
					if r.status/100 != 2 {
						r.body = strings.TrimSpace(string(b))
					}
				}
				r.done, r.err = time.Now(), err
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			})
		}
	})
	var once sync.Once
	return &load{stop: func() []sentRequest {
		once.Do(func() {
			cancel()
			wg.Wait()
			keepAlive.CloseIdleConnections()
		})
		mu.Lock()
		defer mu.Unlock()
		return out
	}}
}
