package router

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAffinitySticksAndRepicks(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		both := Table{
			Routes: []Route{
				{Revision: 1, Weight: 1, Backends: []string{hostport(a)}},
				{Revision: 2, Weight: 1, Backends: []string{hostport(b)}},
			},
			Affinity: &Affinity{Cookie: "lg", MaxAge: time.Minute},
		}
		r.Set(both)
		url, c := serve(t, r), newClient(t)

		first := get(t, c, url)
		setCookie := first.header.Get("Set-Cookie")
		rev := first.header.Get(RevisionHeader)
		// The first session gets bucket 0 (sessions.go).
		if want := "lg=" + rev + ".0; Path=/; Max-Age=60; HttpOnly"; setCookie != want {
			t.Fatalf("Set-Cookie = %q, want %q", setCookie, want)
		}
		withCookie := func(value string) response {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Cookie", "theme=dark; lg="+value+"; other=1")
			return do(t, c, req)
		}
		for i := range 20 {
			res := withCookie(rev)
			if got := res.header.Get(RevisionHeader); got != rev {
				t.Fatalf("request %d with cookie lg=%s went to revision %s", i, rev, got)
			}
			if res.header.Get("Set-Cookie") != "" {
				t.Fatalf("request %d: a valid cookie must not be set again", i)
			}
		}

		// The cookie's revision leaves the table: the client is re-picked and
		// told so.
		other := map[string]Route{"1": both.Routes[1], "2": both.Routes[0]}[rev]
		r.Set(Table{Routes: []Route{other}, Affinity: both.Affinity})
		res := withCookie(rev)
		otherRev := res.header.Get(RevisionHeader)
		if otherRev == rev || !strings.HasPrefix(res.header.Get("Set-Cookie"), "lg="+otherRev+".") {
			t.Errorf("after revision %s left: served by %s with Set-Cookie %q", rev, otherRev, res.header.Get("Set-Cookie"))
		}

		// A revision still in the table with weight 0 takes no sticky traffic.
		zero := Route{Revision: 9, Weight: 0, Backends: []string{hostport(a)}}
		r.Set(Table{Routes: []Route{other, zero}, Affinity: both.Affinity})
		if got := withCookie("9").header.Get(RevisionHeader); got != otherRev {
			t.Errorf("cookie for a weight-0 revision went to %s, want %s", got, otherRev)
		}
		if got := withCookie("garbage").header.Get(RevisionHeader); got != otherRev {
			t.Errorf("malformed cookie went to %s, want %s", got, otherRev)
		}
	})
}

func TestAffinitySplitsNewClientsByWeight(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		a, b := startBackend(t, "a"), startBackend(t, "b")
		r := New("web")
		r.Set(Table{
			Routes: []Route{
				{Revision: 1, Weight: 3, Backends: []string{hostport(a)}},
				{Revision: 2, Weight: 1, Backends: []string{hostport(b)}},
			},
			Affinity: &Affinity{},
		})
		url, c := serve(t, r), newClient(t)
		counts := map[string]int{}
		for range 40 {
			res := get(t, c, url)
			counts[res.body]++
			if !strings.HasPrefix(res.header.Get("Set-Cookie"), "lastgood-web=") {
				t.Fatalf("Set-Cookie = %q, want the default cookie name lastgood-web", res.header.Get("Set-Cookie"))
			}
			if strings.Contains(res.header.Get("Set-Cookie"), "Max-Age") {
				t.Fatalf("Set-Cookie = %q, want a session cookie when MaxAge is 0", res.header.Get("Set-Cookie"))
			}
		}
		if counts["a"] != 30 || counts["b"] != 10 {
			t.Errorf("new clients split %v, want 30:10", counts)
		}
	})
}

func TestCookieRevision(t *testing.T) {
	tests := []struct {
		header []string
		rev    int
		ok     bool
	}{
		{[]string{"lg=12"}, 12, true},
		{[]string{"a=1; lg=\"3\""}, 3, true},
		{[]string{"a=1", "b=2;lg=4"}, 4, true},
		{[]string{"lgx=5"}, 0, false},
		{[]string{"lg=0"}, 0, false},
		{[]string{"lg=-1"}, 0, false},
		{[]string{"lg=1234567890"}, 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		rev, ok := cookieRevision(http.Header{"Cookie": tt.header}, "lg")
		if rev != tt.rev || ok != tt.ok {
			t.Errorf("cookieRevision(%q) = %d, %v; want %d, %v", tt.header, rev, ok, tt.rev, tt.ok)
		}
	}
}

// A holdback route (the warm previous revision inside the rollback window)
// is a sample of requests, not of clients: it takes exactly its weighted
// share of every request, whatever the cookie says, and never sets a
// cookie; a client pinned to it before the promotion is moved to the
// promoted revision like one without a cookie.
func TestHoldbackIsASampleOfRequestsNotOfClients(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		old, promoted := startBackend(t, "old"), startBackend(t, "new")
		r := New("web")
		r.Set(Table{
			Routes: []Route{
				{Revision: 2, Weight: 95, Backends: []string{hostport(promoted)}},
				{Revision: 1, Weight: 5, Backends: []string{hostport(old)}, Holdback: true},
			},
			Affinity: &Affinity{Cookie: "lg"},
		})
		url, c := serve(t, r), newClient(t)
		with := func(cookie string) response {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if cookie != "" {
				req.Header.Set("Cookie", "lg="+cookie)
			}
			return do(t, c, req)
		}
		counts := map[string]map[string]int{}
		for _, cookie := range []string{"", "1", "2"} {
			counts[cookie] = map[string]int{}
			for range 200 {
				res := with(cookie)
				counts[cookie][res.body]++
				set := res.header.Get("Set-Cookie")
				switch {
				case res.body == "old" && set != "":
					t.Fatalf("cookie %q: the holdback set a cookie %q", cookie, set)
				case res.body == "new" && cookie == "2" && set != "":
					t.Fatalf("a valid cookie for revision 2 was set again: %q", set)
				case res.body == "new" && cookie != "2" && !strings.HasPrefix(set, "lg=2."):
					t.Fatalf("cookie %q: moved to revision 2 without being told (Set-Cookie %q)", cookie, set)
				}
			}
		}
		// The schedule is deterministic: 5 in every 100 requests, whatever
		// the cookie.
		for cookie, n := range counts {
			if n["old"] != 10 || n["new"] != 190 {
				t.Errorf("cookie %q: %v, want 10 of 200 held back", cookie, n)
			}
		}
	})
}
