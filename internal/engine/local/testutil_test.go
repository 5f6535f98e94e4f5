package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// recorder keeps the events an engine emits.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// of returns the events of one type, in order.
func (r *recorder) of(typ string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// testEngine is an engine whose Run is owned by the test.
type testEngine struct {
	*Engine
	events *recorder
	cancel context.CancelFunc
	done   chan error
}

// startEngine creates an engine over a fresh data dir (unless cfg has one)
// and runs it until the test ends.
func startEngine(t *testing.T, cfg Config) *testEngine {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 5 * time.Second
	}
	rec := &recorder{}
	cfg.OnEvent = rec.add
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	te := &testEngine{Engine: e, events: rec, cancel: cancel, done: make(chan error, 1)}
	go func() { te.done <- e.Run(ctx) }()
	t.Cleanup(func() { te.stop(t) })
	return te
}

// stop cancels Run and waits for it; it may be called more than once.
func (te *testEngine) stop(t *testing.T) {
	t.Helper()
	te.cancel()
	select {
	case err, ok := <-te.done:
		if ok {
			close(te.done)
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of cancel")
	}
}

// fastHTTP is a readiness or liveness probe on /healthz that reacts quickly.
func fastHTTP(failures, successes int) *manifest.Probe {
	return &manifest.Probe{
		HTTP:             "/healthz",
		Period:           manifest.Duration(100 * time.Millisecond),
		Timeout:          manifest.Duration(time.Second),
		FailureThreshold: failures,
		SuccessThreshold: successes,
	}
}

func fastTCP() *manifest.Probe {
	return &manifest.Probe{TCP: true, Period: manifest.Duration(100 * time.Millisecond), Timeout: manifest.Duration(time.Second)}
}

// sampleSpec runs the sample app with an HTTP readiness probe.
func sampleSpec(app string, rev int, env map[string]string) Spec {
	return Spec{App: app, Revision: rev, Command: []string{sampleApp}, Env: env, Readiness: fastHTTP(2, 1)}
}

// helperSpec runs the test binary in a helper mode.
func helperSpec(t *testing.T, app string, rev int, mode string, env map[string]string, args ...string) Spec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{helperEnv: mode}
	for k, v := range env {
		all[k] = v
	}
	return Spec{App: app, Revision: rev, Command: append([]string{self}, args...), Env: all, Readiness: fastTCP()}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplicas waits until app has exactly n replicas, all ready, and
// returns them.
func waitReady(t *testing.T, e *testEngine, app string, n int) []Replica {
	t.Helper()
	var rs []Replica
	waitFor(t, 30*time.Second, fmt.Sprintf("%d ready replicas of %s", n, app), func() bool {
		rs = e.Replicas(app)
		if len(rs) != n {
			return false
		}
		for _, r := range rs {
			if !r.Ready {
				return false
			}
		}
		return true
	})
	return rs
}

// gone reports whether pid no longer runs: no such process, or a zombie
// (killed and waiting for a parent that may never reap it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	fields, ok := statFields(pid)
	return !ok || (len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X"))
}

// get fetches http://addr/path.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(rs []Replica) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s(%s)", r.ID, r.State))
	}
	return strings.Join(out, " ")
}
