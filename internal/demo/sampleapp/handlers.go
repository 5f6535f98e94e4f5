package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// app holds what the handlers need.
type app struct {
	faults   faults
	ready    *atomic.Bool
	greeting string
	rng      *drawer
	started  time.Time
	store    *store // nil unless DB_TABLE is set
	revision string
}

// drawer is a seeded random source shared by concurrent requests.
type drawer struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newDrawer(seed uint64) *drawer {
	return &drawer{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// float64 returns the next draw in [0, 1).
func (d *drawer) float64() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64()
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.delayed(a.hello))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /livez", a.livez)
	mux.HandleFunc("GET /stream", a.delayed(a.stream))
	mux.HandleFunc("GET /slow", a.delayed(a.slow))
	mux.HandleFunc("GET /items/{id}", a.delayed(item))
	mux.HandleFunc("POST /upload", a.delayed(upload))
	return mux
}

// upload reads the request body to its end and says how long it was.
func upload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d bytes\n", n)
}

// delayed adds FAULT_LATENCY in front of h.
func (a *app) delayed(h http.HandlerFunc) http.HandlerFunc {
	if a.faults.latency <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !sleep(r, a.faults.latency) {
			return
		}
		h(w, r)
	}
}

func (a *app) hello(w http.ResponseWriter, r *http.Request) {
	if a.faults.dependency != "" {
		if _, err := os.Stat(a.faults.dependency); err == nil {
			http.Error(w, "dependency down (FAULT_DEPENDENCY)", http.StatusServiceUnavailable)
			return
		}
	}
	if a.faults.errorRate > 0 && a.rng.float64() < a.faults.errorRate {
		http.Error(w, "simulated failure (FAULT_ERROR_RATE)", http.StatusInternalServerError)
		return
	}
	if a.store != nil {
		row, err := a.store.roundTrip(r.Context(), "revision "+a.revision)
		if err != nil {
			http.Error(w, "database: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%srow: %s\n", a.greeting, strings.Join(row, " "))
		return
	}
	fmt.Fprint(w, a.greeting)
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	if a.faults.neverReady || !a.ready.Load() || a.unreadyFileExists() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, "ok")
}

// unreadyFileExists reports whether FAULT_UNREADY_FILE names a file that
// exists now.
func (a *app) unreadyFileExists() bool {
	if a.faults.unreadyFile == "" {
		return false
	}
	_, err := os.Stat(a.faults.unreadyFile)
	return err == nil
}

// livez is a liveness endpoint that FAULT_UNHEALTHY_AFTER turns bad: the
// process keeps serving, but says it is stuck.
func (a *app) livez(w http.ResponseWriter, r *http.Request) {
	if a.faults.unhealthyAfter > 0 && time.Since(a.started) > a.faults.unhealthyAfter {
		http.Error(w, "stuck (FAULT_UNHEALTHY_AFTER)", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, "alive")
}

func (a *app) stream(w http.ResponseWriter, r *http.Request) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for i := 1; i <= 5; i++ {
		if i > 1 && !sleep(r, 50*time.Millisecond) {
			return
		}
		fmt.Fprintf(w, "chunk %d\n", i)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (a *app) slow(w http.ResponseWriter, r *http.Request) {
	d := time.Second
	if v := r.URL.Query().Get("d"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 0 || d > time.Minute {
			http.Error(w, "d: want a Go duration between 0 and 1m", http.StatusBadRequest)
			return
		}
	}
	if !sleep(r, d) {
		return
	}
	fmt.Fprintf(w, "slept %s\n", d)
}

// sleep waits d or until the client goes away; it reports whether d passed.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
