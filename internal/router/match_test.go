package router

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// canaryTable has a stable revision 1 on backend "a" and a weight-0 canary,
// revision 2, on backends "c1" and "c2" that only the rules reach.
func canaryTable(t *testing.T) Table {
	a, c1, c2 := startBackend(t, "a"), startBackend(t, "c1"), startBackend(t, "c2")
	return Table{
		Routes: []Route{
			{Revision: 1, Weight: 1, Backends: []string{hostport(a)}},
			{Revision: 2, Weight: 0, Backends: []string{hostport(c1), hostport(c2)}},
		},
		Match: []Match{
			{Header: "x-lastgood-canary", Value: "yes", Revision: 2},
			{Cookie: "beta", Value: "on", Revision: 2},
			{Header: "Host", Value: "canary.example", Revision: 2},
		},
	}
}

// rawGet sends one request with the given version and header lines on a
// new connection and reads the response.
func rawGet(t *testing.T, url, version string, lines ...string) response {
	t.Helper()
	conn, br := rawConn(t, url)
	host := "app.example"
	var head strings.Builder
	for _, l := range lines {
		if name, value, _ := strings.Cut(l, ":"); strings.EqualFold(name, "host") {
			host = strings.TrimSpace(value)
			continue
		}
		head.WriteString(l + "\r\n")
	}
	io.WriteString(conn, "GET / "+version+"\r\nHost: "+host+"\r\n"+head.String()+"Connection: close\r\n\r\n")
	return readResponse(t, br, "GET")
}

func TestMatchReachesZeroWeightCanary(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		canary bool
	}{
		{"no header", nil, false},
		{"header", []string{"X-Lastgood-Canary: yes"}, true},
		{"header in odd case, spaces around value", []string{"x-LASTGOOD-canary:   yes  "}, true},
		{"header among others", []string{"Accept: */*", "X-Lastgood-Canary: no", "X-Lastgood-Canary: yes"}, true},
		{"header value differs in case", []string{"X-Lastgood-Canary: Yes"}, false},
		{"header value is longer", []string{"X-Lastgood-Canary: yess"}, false},
		{"header name is longer", []string{"X-Lastgood-Canary2: yes"}, false},
		{"cookie among others", []string{"Cookie: theme=dark; beta=on; session=abc"}, true},
		{"cookie last, no space", []string{"Cookie: theme=dark;beta=on"}, true},
		{"cookie in a second Cookie field", []string{"Cookie: theme=dark", "Cookie: a=1; beta=on"}, true},
		{"quoted cookie value", []string{`Cookie: beta="on"`}, true},
		{"cookie value differs", []string{"Cookie: beta=onn; x=on"}, false},
		{"cookie name in other case", []string{"Cookie: Beta=on"}, false},
		{"cookie name is a suffix", []string{"Cookie: xbeta=on"}, false},
		{"value under another cookie", []string{"Cookie: on=beta"}, false},
		{"host", []string{"Host: canary.example"}, true},
	}
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := New("web")
		r.Set(canaryTable(t))
		url := serve(t, r)
		canaryBodies := map[string]int{}
		matched := 0
		for _, tt := range tests {
			for range 2 {
				res := rawGet(t, url, "HTTP/1.1", tt.lines...)
				want, wantBody := "1", "a"
				if tt.canary {
					want, wantBody = "2", "c"
					matched++
					canaryBodies[res.body]++
				}
				if res.status != http.StatusOK || res.header.Get(RevisionHeader) != want || !strings.HasPrefix(res.body, wantBody) {
					t.Errorf("%s: got %d from %q with %s %q, want revision %s", tt.name, res.status, res.body, RevisionHeader, res.header.Get(RevisionHeader), want)
				}
				if sc := res.header.Get("Set-Cookie"); sc != "" {
					t.Errorf("%s: Set-Cookie %q without affinity", tt.name, sc)
				}
			}
		}
		if canaryBodies["c1"] != matched/2 || canaryBodies["c2"] != matched/2 {
			t.Errorf("matched requests went %v, want round robin over c1 and c2", canaryBodies)
		}
		if s := statsOf(t, r, 2); s.Requests != uint64(matched) || s.Status[2] != uint64(matched) {
			t.Errorf("canary stats %+v, want %d requests, all 2xx", s, matched)
		}
		if s := statsOf(t, r, 1); s.Requests != uint64(2*len(tests)-matched) {
			t.Errorf("stable stats: %d requests, want %d", s.Requests, 2*len(tests)-matched)
		}
		if n := r.handoffs.Load(); n != 0 {
			t.Errorf("%d connections handed to net/http: the fast path did not serve the matches itself", n)
		}
	})
}

// TestMatchOnHandedOffConnections checks that requests the fast path hands
// to net/http (here HTTP/1.0) are matched there too.
func TestMatchOnHandedOffConnections(t *testing.T) {
	r := New("web")
	r.Set(canaryTable(t))
	url := startServe(t, r)
	tests := []struct {
		lines []string
		want  string
	}{
		{nil, "1"},
		{[]string{"x-lastgood-canary: yes"}, "2"},
		{[]string{"X-Lastgood-Canary: no"}, "1"},
		{[]string{"Cookie: a=1", "Cookie: b=2; beta=on"}, "2"},
		{[]string{"Cookie: beta=off"}, "1"},
		{[]string{"Host: canary.example"}, "2"},
	}
	for _, tt := range tests {
		res := rawGet(t, url, "HTTP/1.0", tt.lines...)
		if res.status != http.StatusOK || res.header.Get(RevisionHeader) != tt.want {
			t.Errorf("HTTP/1.0 with %q: got %d from revision %q, want %s", tt.lines, res.status, res.header.Get(RevisionHeader), tt.want)
		}
	}
	if n := r.handoffs.Load(); n != uint64(len(tests)) {
		t.Errorf("%d connections handed to net/http, want %d", n, len(tests))
	}
	if s := statsOf(t, r, 2); s.Requests != 3 {
		t.Errorf("canary served %d requests, want 3", s.Requests)
	}
}

func TestMatchTakesPrecedenceOverAffinity(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		r.Set(Table{
			Routes: []Route{
				{Revision: 1, Weight: 1, Backends: []string{hostport(a)}},
				{Revision: 2, Weight: 1, Backends: []string{hostport(b)}},
			},
			Affinity: &Affinity{Cookie: "lg"},
			Match:    []Match{{Header: "X-Canary", Value: "1", Revision: 2}},
		})
		url, c := serve(t, r), newClient(t)
		send := func(cookie, canary string) response {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			if canary != "" {
				req.Header.Set("X-Canary", canary)
			}
			return do(t, c, req)
		}
		for i := range 10 {
			if res := send("lg=1", "1"); res.body != "b" || res.header.Get("Set-Cookie") != "" {
				t.Fatalf("request %d pinned to 1 with the canary header: served by %q, Set-Cookie %q; want b and no cookie", i, res.body, res.header.Get("Set-Cookie"))
			}
			if res := send("", "1"); res.body != "b" || res.header.Get("Set-Cookie") != "" {
				t.Fatalf("request %d without cookie with the canary header: served by %q, Set-Cookie %q; want b and no cookie", i, res.body, res.header.Get("Set-Cookie"))
			}
			if res := send("lg=1", "0"); res.body != "a" || res.header.Get("Set-Cookie") != "" {
				t.Fatalf("request %d pinned to 1 without a match: served by %q, Set-Cookie %q; want a and no cookie", i, res.body, res.header.Get("Set-Cookie"))
			}
		}
		// Without a match or a cookie, the client is picked by weight and
		// told so.
		if res := send("", ""); !strings.HasPrefix(res.header.Get("Set-Cookie"), "lg="+res.header.Get(RevisionHeader)+".") {
			t.Errorf("new client: Set-Cookie %q for revision %s", res.header.Get("Set-Cookie"), res.header.Get(RevisionHeader))
		}
	})
}

func TestMatchFallsThroughWithoutBackends(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		r.Set(Table{
			Routes: []Route{
				{Revision: 1, Weight: 1, Backends: []string{hostport(a)}},
				{Revision: 2, Weight: 0, Backends: []string{hostport(b)}},
				{Revision: 3, Weight: 0},
			},
			Match: []Match{
				{Header: "X-Gone", Value: "1", Revision: 3},              // no backends
				{Header: "X-Absent", Value: "1", Revision: 7},            // not in the table
				{Header: "X-Both", Cookie: "x", Value: "1", Revision: 2}, // invalid
				{Cookie: "to", Value: "2", Revision: 2},
				{Header: "X-Later", Value: "1", Revision: 1},
			},
		})
		url, c := serve(t, r), newClient(t)
		tests := []struct {
			name   string
			header http.Header
			want   string
		}{
			{"rule without backends", http.Header{"X-Gone": {"1"}}, "a"},
			{"rule for a revision not in the table", http.Header{"X-Absent": {"1"}}, "a"},
			{"invalid rule", http.Header{"X-Both": {"1"}, "Cookie": {"x=1"}}, "a"},
			{"usable rule", http.Header{"Cookie": {"to=2"}}, "b"},
			// The first rule that matches decides, even when it cannot
			// route: the request falls through to the weights.
			{"first match without backends", http.Header{"X-Gone": {"1"}, "Cookie": {"to=2"}}, "a"},
			{"first match wins", http.Header{"Cookie": {"to=2"}, "X-Later": {"1"}}, "b"},
		}
		for _, tt := range tests {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header = tt.header
			if res := do(t, c, req); res.status != http.StatusOK || res.body != tt.want {
				t.Errorf("%s: got %d %q, want 200 %q", tt.name, res.status, res.body, tt.want)
			}
		}
		if s := statsOf(t, r, 3); s.Requests != 0 {
			t.Errorf("revision 3 without backends counted %d requests", s.Requests)
		}

		// With no weighted route, only matched requests are served.
		r.Set(Table{
			Routes: []Route{{Revision: 2, Weight: 0, Backends: []string{hostport(b)}}},
			Match:  []Match{{Cookie: "to", Value: "2", Revision: 2}},
		})
		if res := get(t, c, url); res.status != http.StatusServiceUnavailable {
			t.Errorf("unmatched request with no weighted route: %d %q, want 503", res.status, res.body)
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Cookie", "to=2")
		if res := do(t, c, req); res.status != http.StatusOK || res.body != "b" || res.header.Get(RevisionHeader) != "2" {
			t.Errorf("matched request with no weighted route: %d %q, want 200 b from revision 2", res.status, res.body)
		}
	})
}

// TestMatchOnlyBackendDrains checks that a backend reached only through a
// rule is drained like any other when a table without the rule replaces
// its table.
func TestMatchOnlyBackendDrains(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		entered, release := make(chan struct{}), make(chan struct{})
		slow := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			close(entered)
			<-release
			io.WriteString(w, "slow")
		}))
		a := startBackend(t, "a")
		stable := Route{Revision: 1, Weight: 1, Backends: []string{hostport(a)}}
		r := New("web")
		r.Set(Table{
			Routes: []Route{stable, {Revision: 2, Backends: []string{hostport(slow)}}},
			Match:  []Match{{Header: "X-Canary", Value: "1", Revision: 2}},
		})
		url, c := serve(t, r), newClient(t)
		done := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("X-Canary", "1")
			res, err := c.Do(req)
			if err != nil {
				done <- err.Error()
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			done <- string(body)
		}()
		select {
		case <-entered:
		case body := <-done:
			t.Fatalf("the matched request did not reach the canary: got %q", body)
		}
		r.Set(Table{Routes: []Route{stable}})
		if s := statsOf(t, r, 2); s.InFlight != 1 {
			t.Errorf("canary in flight = %d, want 1", s.InFlight)
		}
		short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := r.WaitIdle(short, hostport(slow)); err == nil {
			t.Error("WaitIdle returned while a matched request was in flight")
		}
		close(release)
		if err := r.WaitIdle(t.Context(), hostport(slow)); err != nil {
			t.Fatalf("WaitIdle: %v", err)
		}
		if body := <-done; body != "slow" {
			t.Errorf("drained request got %q, want slow", body)
		}
	})
}

func TestSwapMatchRulesUnderLoad(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		one := []string{hostport(startBackend(t, "1"))}
		two := []string{hostport(startBackend(t, "2")), hostport(startBackend(t, "2"))}
		routes := []Route{{Revision: 1, Weight: 1, Backends: one}, {Revision: 2, Weight: 0, Backends: two}}
		tables := []Table{
			{Routes: routes, Match: []Match{{Cookie: "canary", Value: "1", Revision: 2}}},
			{Routes: routes},
		}
		r := New("web")
		r.Set(tables[0])
		url, c := serve(t, r), newClient(t)

		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var ok, failed, plainOnCanary, matched, unmatched atomic.Int64
		var firstFailure atomic.Value
		for i := range 8 {
			withCookie := i%2 == 0
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					if withCookie {
						req.Header.Set("Cookie", "a=b; canary=1")
					}
					res, err := c.Do(req)
					if err != nil {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
						continue
					}
					body, err := io.ReadAll(res.Body)
					res.Body.Close()
					rev := res.Header.Get(RevisionHeader)
					if err != nil || res.StatusCode != http.StatusOK || string(body) != rev {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, res.Status+" body "+string(body)+" header "+rev)
						continue
					}
					ok.Add(1)
					switch {
					case !withCookie && rev == "2":
						plainOnCanary.Add(1)
					case withCookie && rev == "2":
						matched.Add(1)
					case withCookie:
						unmatched.Add(1)
					}
				}
			})
		}
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ok.Load() < 400 || matched.Load() == 0 || unmatched.Load() == 0; i++ {
			if time.Now().After(deadline) {
				break
			}
			r.Set(tables[i%2])
			time.Sleep(time.Millisecond)
		}
		stop()
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during swaps; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
		}
		if matched.Load() == 0 || unmatched.Load() == 0 {
			t.Fatalf("requests with the cookie: %d on the canary, %d not; want both tables to have served", matched.Load(), unmatched.Load())
		}
		if plainOnCanary.Load() != 0 {
			t.Errorf("%d requests without the cookie reached the weight-0 canary", plainOnCanary.Load())
		}
		s1, s2 := statsOf(t, r, 1), statsOf(t, r, 2)
		if s2.Requests != uint64(matched.Load()) || s1.Requests+s2.Requests != uint64(ok.Load()) {
			t.Errorf("stats %d + %d requests, want %d on the canary and %d in total", s1.Requests, s2.Requests, matched.Load(), ok.Load())
		}
		if s1.InFlight != 0 || s2.InFlight != 0 {
			t.Errorf("in flight after load: %d, %d", s1.InFlight, s2.InFlight)
		}
	})
}

// countingView is a request that records what pick asks of it.
type countingView struct{ revisions, checks int }

func (v *countingView) revision(string) (int, bool) { v.revisions++; return 0, false }
func (v *countingView) matches(*matchRule) bool     { v.checks++; return false }

// TestNoRulesNoScan checks that a table without rules never asks the
// request about them, and that one with rules asks about each in order.
func TestNoRulesNoScan(t *testing.T) {
	r := New("web")
	routes := []Route{{Revision: 1, Weight: 1, Backends: []string{"127.0.0.1:1"}}}
	pick := func(v *countingView) *route {
		rt, b, _ := r.pick(v)
		if b != nil {
			b.inFlight.Add(-1)
		}
		return rt
	}
	r.Set(Table{Routes: routes, Match: []Match{{Header: "X", Cookie: "y", Revision: 1}}}) // invalid: ignored
	var v countingView
	if rt := pick(&v); rt == nil || v.checks != 0 || v.revisions != 0 {
		t.Errorf("table without usable rules: route %v, %d rule checks, %d cookie reads; want a route and none", rt, v.checks, v.revisions)
	}
	r.Set(Table{Routes: routes, Match: []Match{{Header: "X", Revision: 1}, {Cookie: "y", Revision: 5}}})
	v = countingView{}
	if rt := pick(&v); rt == nil || v.checks != 2 {
		t.Errorf("table with two rules: route %v, %d rule checks, want a route and 2", rt, v.checks)
	}
}

func TestHasCookie(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"beta=on", true},
		{"a=1; beta=on", true},
		{"a=1;beta=on;b=2", true},
		{"\tbeta=on\t; a=1", true},
		{`beta="on"`, true},
		{"beta=off; beta=on", true},
		{`beta="on`, false},
		{"beta=o", false},
		{"beta", false},
		{"beta on", false},
		{"abeta=on", false},
		{"beta==on", false},
		{";;", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasCookie(tt.line, "beta", "on"); got != tt.want {
			t.Errorf("hasCookie(%q) = %v, want %v", tt.line, got, tt.want)
		}
		if got := hasCookie([]byte(tt.line), "beta", "on"); got != tt.want {
			t.Errorf("hasCookie([]byte(%q)) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestFastPathMatchAllocatesNothing checks that matching a parsed head
// against rules, and reading its affinity cookie, allocate nothing.
func TestFastPathMatchAllocatesNothing(t *testing.T) {
	var h requestHead
	head := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Canary: no\r\nCookie: theme=dark; session=0123456789abcdef0123456789abcdef0123456789; lg=3\r\n\r\n")
	if err := parseRequestHead(head, &h); err != nil {
		t.Fatal(err)
	}
	rules := []matchRule{{header: "X-Canary", lower: "x-canary", value: "yes"}, {cookie: "beta", value: "on"}}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range rules {
			if h.matches(&rules[i]) {
				t.Fatal("unexpected match")
			}
		}
		if rev, ok := h.revision("lg"); rev != 3 || !ok {
			t.Fatalf("affinity cookie: %d, %v", rev, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per match, want 0", allocs)
	}
}
