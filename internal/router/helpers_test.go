package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if a test left a server, a proxy connection or a
// router goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to timeout for goroutines of servers,
// connections or this package to end, and returns the stacks of those that
// did not.
func leakedGoroutines(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
		var leaked []string
		for _, s := range stacks {
			if strings.Contains(s, "net/http.(*persistConn)") ||
				strings.Contains(s, "net/http.(*conn).serve") ||
				strings.Contains(s, "net/http.(*Server).Serve") ||
				strings.Contains(s, "internal/router.") && !strings.Contains(s, "TestMain") {
				leaked = append(leaked, s)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBackend starts a replica stand-in that answers every request with
// its name in the body and in the Backend header.
func startBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	return startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Backend", name)
		io.WriteString(w, name)
	}))
}

func startHandler(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func hostport(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// deadAddr returns a loopback address on which nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveFunc serves r for a test and returns its base URL.
type serveFunc func(t testing.TB, r *Router) string

// forEachPath runs test against both ways of serving a router: Serve (the
// fast path, with net/http for what it hands off) and ServeHTTP behind a
// plain net/http server.
func forEachPath(t *testing.T, test func(t *testing.T, serve serveFunc)) {
	t.Run("Serve", func(t *testing.T) { test(t, startServe) })
	t.Run("ServeHTTP", func(t *testing.T) { test(t, startServeHTTP) })
}

// startServe runs r.Serve on a loopback listener until the test ends, and
// checks that it shuts down cleanly.
func startServe(t testing.TB, r *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	return "http://" + ln.Addr().String()
}

// startServeHTTP serves r on a loopback net/http server and returns its URL.
func startServeHTTP(t testing.TB, r *Router) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.Close()
		r.transport.CloseIdleConnections()
	})
	return srv.URL
}

func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// response is what a test reads of one response.
type response struct {
	status int
	body   string
	header http.Header
}

func do(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: res.StatusCode, body: string(body), header: res.Header}
}

func get(t testing.TB, c *http.Client, url string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// statsOf returns the stats of revision rev.
func statsOf(t testing.TB, r *Router, rev int) RevisionStats {
	t.Helper()
	for _, s := range r.Stats() {
		if s.Revision == rev {
			return s
		}
	}
	t.Fatalf("no stats for revision %d in %+v", rev, r.Stats())
	return RevisionStats{}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
