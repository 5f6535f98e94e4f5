package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWeightsGiveExactCountsAndInterleave(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		r.Set(Table{Routes: []Route{
			{Revision: 1, Weight: 11, Backends: []string{hostport(a)}},
			{Revision: 2, Weight: 3, Backends: []string{hostport(b)}},
		}})
		url, c := serve(t, r), newClient(t)

		var seq strings.Builder
		for range 140 {
			res := get(t, c, url)
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			wantRev := map[string]string{"a": "1", "b": "2"}[res.body]
			if got := res.header.Get(RevisionHeader); got != wantRev {
				t.Fatalf("%s = %q for body %q, want %q", RevisionHeader, got, res.body, wantRev)
			}
			seq.WriteString(res.body)
		}
		got := seq.String()
		if na, nb := strings.Count(got, "a"), strings.Count(got, "b"); na != 110 || nb != 30 {
			t.Errorf("a=%d b=%d, want exactly 110 and 30 for weights 11:3", na, nb)
		}
		if strings.Contains(got, "aaaaa") || strings.Contains(got, "bb") {
			t.Errorf("sequence bunches: %s", got[:28])
		}
		if s := statsOf(t, r, 1); s.Requests != 110 || s.Status[2] != 110 || s.Errors != 0 {
			t.Errorf("revision 1 stats %+v, want 110 requests, all 2xx", s)
		}
	})
}

func TestRoundRobinWithinRevision(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 4, Weight: 1, Backends: []string{hostport(a), hostport(b)}}}})
		url, c := serve(t, r), newClient(t)
		counts := map[string]int{}
		for range 100 {
			counts[get(t, c, url).body]++
		}
		if counts["a"] != 50 || counts["b"] != 50 {
			t.Errorf("counts %v, want 50 each", counts)
		}
	})
}

func TestNoRouteIs503(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a := startBackend(t, "a")
		r := New("shop")
		url, c := serve(t, r), newClient(t)
		tables := []Table{
			{},
			{Routes: []Route{{Revision: 1, Weight: 0, Backends: []string{hostport(a)}}}},
			{Routes: []Route{{Revision: 1, Weight: 100}}},
		}
		for i, tab := range tables {
			r.Set(tab)
			res := get(t, c, url)
			if res.status != http.StatusServiceUnavailable || res.body != "lastgood: no ready replica for shop\n" {
				t.Errorf("table %d: got %d %q, want 503 and the no-replica message", i, res.status, res.body)
			}
		}
	})
}

func TestRetriesOnAnotherBackendWhenDialFails(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		live := startBackend(t, "live")
		dead := deadAddr(t)
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 3, Weight: 1, Backends: []string{dead, hostport(live)}}}})
		url, c := serve(t, r), newClient(t)
		for i := range 20 {
			if res := get(t, c, url); res.status != http.StatusOK || res.body != "live" {
				t.Fatalf("request %d: %d %q, want 200 from the live backend", i, res.status, res.body)
			}
		}
		if s := statsOf(t, r, 3); s.Errors != 0 || s.Requests != 20 {
			t.Errorf("stats %+v, want 20 requests and no errors", s)
		}
		if err := r.WaitIdle(t.Context(), dead); err != nil {
			t.Errorf("WaitIdle(dead): %v; the retry must move the in-flight count", err)
		}

		r.Set(Table{Routes: []Route{{Revision: 3, Weight: 1, Backends: []string{dead}}}})
		res := get(t, c, url)
		if res.status != http.StatusBadGateway || res.header.Get(RevisionHeader) != "3" {
			t.Fatalf("only a dead backend: got %d with %s=%q, want 502 from revision 3", res.status, RevisionHeader, res.header.Get(RevisionHeader))
		}
		if s := statsOf(t, r, 3); s.Errors != 1 || s.Status[5] != 1 || s.Requests != 21 {
			t.Errorf("stats %+v, want the 502 counted as an error", s)
		}
	})
}

func TestForwardedHeaders(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		echo := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			fmt.Fprintf(w, "for=%s host=%s proto=%s reqhost=%s revision=%s",
				strings.Join(req.Header.Values("X-Forwarded-For"), ","), req.Header.Get("X-Forwarded-Host"),
				req.Header.Get("X-Forwarded-Proto"), req.Host, req.Header.Get(RevisionHeader))
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(echo)}}}})
		url, c := serve(t, r), newClient(t)
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "shop.example"
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		res := do(t, c, req)
		want := "for=127.0.0.1 host=shop.example proto=http reqhost=shop.example revision="
		if res.body != want {
			t.Errorf("backend saw %q, want %q (client's X-Forwarded-For dropped, Host kept)", res.body, want)
		}
	})
}

func TestRevisionHeaderReplacesBackendsOwn(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		liar := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set(RevisionHeader, "99")
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 7, Weight: 1, Backends: []string{hostport(liar)}}}})
		res := get(t, newClient(t), serve(t, r))
		if got := res.header.Values(RevisionHeader); len(got) != 1 || got[0] != "7" {
			t.Errorf("%s = %q, want exactly [7]", RevisionHeader, got)
		}
	})
}

func TestStatsCountsClassesAndLatency(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if ms, err := strconv.Atoi(req.URL.Query().Get("sleep")); err == nil {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			code, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/"))
			w.WriteHeader(code)
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 2, Weight: 1, Backends: []string{hostport(backend)}}}})
		url, c := serve(t, r), newClient(t)
		for path, n := range map[string]int{"/200": 6, "/302": 2, "/404": 3, "/503": 4, "/500": 1} {
			for range n {
				get(t, c, url+path)
			}
		}
		before := statsOf(t, r, 2)
		want := [6]uint64{0, 0, 6, 2, 3, 5}
		if before.Requests != 16 || before.Errors != 5 || before.Status != want || before.InFlight != 0 {
			t.Errorf("stats %+v, want 16 requests, 5 errors, classes %v, nothing in flight", before, want)
		}

		for range 10 {
			get(t, c, url+"/200?sleep=30")
		}
		window := statsOf(t, r, 2).Latency.Sub(before.Latency)
		if window.Count() != 10 {
			t.Fatalf("window has %d observations, want 10", window.Count())
		}
		// Every request took at least 30ms; the estimate may be off by one
		// bucket's width (12.5%).
		if p50 := window.Quantile(0.5); p50 < 30*time.Millisecond*7/8 || p50 > 2*time.Second {
			t.Errorf("p50 of 30ms requests = %v", p50)
		}
		if p50 := before.Latency.Quantile(0.5); p50 >= 30*time.Millisecond {
			t.Errorf("p50 of fast requests = %v, want well under 30ms", p50)
		}
	})
}

// TestAbandonedRequestIsARevisionFailure: a client that gives up while its
// request, sent whole, waits on the replica counts as a failure of that
// revision (a 499), with its latency and a proxy error saying so.
func TestAbandonedRequestIsARevisionFailure(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		entered := make(chan struct{})
		backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			close(entered)
			<-req.Context().Done()
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(backend)}}}})
		url, c := serve(t, r), newClient(t)
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		go func() {
			<-entered
			cancel()
		}()
		if _, err := c.Do(req); err == nil {
			t.Fatal("cancelled request succeeded")
		}
		eventually(t, "the abandoned request to be counted", func() bool { return statsOf(t, r, 1).Requests == 1 })
		s := statsOf(t, r, 1)
		if s.Errors != 1 || s.Status[4] != 1 || s.InFlight != 0 || s.Latency.Count() != 1 {
			t.Errorf("stats %+v, want one 4xx (499) counted as an error with its latency, nothing in flight", s)
		}
		if len(s.RecentProxyErrors) != 1 || s.RecentProxyErrors[0].Status != 499 ||
			!strings.Contains(s.RecentProxyErrors[0].Error, "client left") || s.RecentProxyErrors[0].Request != "GET /" {
			t.Errorf("proxy errors %+v, want the abandoned GET /", s.RecentProxyErrors)
		}
	})
}

func TestCutShortBodyCountsAsError(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "only ten b")
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(backend)}}}})
		res, err := newClient(t).Get(serve(t, r))
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		if err == nil {
			t.Fatal("a body cut short by the backend reached the client whole")
		}
		eventually(t, "the request to be counted", func() bool { return statsOf(t, r, 1).Requests == 1 })
		if s := statsOf(t, r, 1); s.Errors != 1 || s.Status[2] != 1 {
			t.Errorf("stats %+v, want the 200 counted and the cut body as an error", s)
		}
	})
}
