package router

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPathTemplate(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"/", "/"},
		{"/healthz", "/healthz"},
		{"/users/42", "/users/:id"},
		{"/users/42/orders/7?x=1", "/users/:id/orders/:id"},
		{"/items/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/items/:id"},
		{"/blob/deadbeef01", "/blob/:id"},
		{"/blob/deadbeef", "/blob/deadbeef"}, // hex letters only: a word
		{"/blob/cafe12", "/blob/cafe12"},     // shorter than 8
		{"/reset/aB3dE5gH7jK9mN1pQ3sT5v", "/reset/:id"},
		{"/very-long-article-title-without-digits", "/very-long-article-title-without-digits"},
		{"/a//b/", "/a//b/"},
		{"/v2/api", "/v2/api"},
		{"/page#frag", "/page"},
		{"/search?q=1/2", "/search"},
	} {
		got, ok := PathTemplate(nil, []byte(tc.target))
		if !ok || string(got) != tc.want {
			t.Errorf("PathTemplate(%q) = %q, %v; want %q", tc.target, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "*", "http://x/y", "/" + strings.Repeat("a", maxTemplate+1)} {
		if got, ok := PathTemplate([]byte("keep"), []byte(bad)); ok || string(got) != "keep" {
			t.Errorf("PathTemplate(%q) = %q, %v; want dst unchanged and false", bad, got, ok)
		}
	}
}

// TestRoutesCountedApart sends traffic on several path templates through
// both serving paths and checks that each busy template gets its own
// counters, that identifiers fold, and that a template beyond the limit
// (or below promoteAfter) counts as OtherRoute.
func TestRoutesCountedApart(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		be := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasPrefix(req.URL.Path, "/broken") {
				w.WriteHeader(500)
				return
			}
			if strings.HasPrefix(req.URL.Path, "/gone") {
				w.WriteHeader(404)
			}
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(be)}}}, Limits: Limits{Routes: 2}})
		base := serve(t, r)
		c := newClient(t)
		get := func(path string) {
			t.Helper()
			resp, err := c.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		for i := range 30 {
			get(fmt.Sprintf("/users/%d", i))
		}
		for range 20 {
			get("/broken")
		}
		for range 15 {
			get("/gone") // the limit of 2 is reached: counted as other
		}
		for i := range 5 {
			get(fmt.Sprintf("/once/%c", 'a'+i)) // a scanner: never promoted
		}
		st := r.Stats()
		if len(st) != 1 {
			t.Fatalf("stats of %d revisions, want 1", len(st))
		}
		byRoute := map[string]RouteStats{}
		for _, rs := range st[0].Routes {
			byRoute[rs.Route] = rs
		}
		users, broken, other := byRoute["/users/:id"], byRoute["/broken"], byRoute[OtherRoute]
		// The first promoteAfter-1 requests of a template come before its
		// slot.
		if users.Requests != 30-(promoteAfter-1) || users.Errors != 0 {
			t.Errorf("/users/:id: %d requests, %d errors; want %d, 0", users.Requests, users.Errors, 30-(promoteAfter-1))
		}
		if broken.Requests != 20-(promoteAfter-1) || broken.Errors != broken.Requests || broken.Codes[500] != broken.Requests {
			t.Errorf("/broken: %+v; want %d requests all 500", broken, 20-(promoteAfter-1))
		}
		if want := uint64(2*(promoteAfter-1) + 15 + 5); other.Requests != want || other.Codes[404] != 15 || other.Status[4] != 15 {
			t.Errorf("other: %d requests, 404s %d; want %d and 15", other.Requests, other.Codes[404], want)
		}
		if len(byRoute) != 3 {
			t.Errorf("routes %v; want /users/:id, /broken and other", st[0].Routes)
		}
		if st[0].Codes[500] != 20 || st[0].Codes[404] != 15 || st[0].Codes[200] != 35 {
			t.Errorf("revision codes %v; want 500:20 404:15 200:35", st[0].Codes)
		}
		if st[0].Routes[0].Route != OtherRoute && st[0].Routes[0].Requests < st[0].Routes[1].Requests {
			t.Errorf("routes not busiest first: %+v", st[0].Routes)
		}
	})
}

// TestPathsSketchKeepsBusyTemplates: a busy template among a flood of
// one-off paths still wins a slot.
func TestPathsSketchKeepsBusyTemplates(t *testing.T) {
	p := newPaths(5)
	got := 0
	for i := range 20000 {
		if i%50 == 0 { // 2% of the traffic
			if p.slot([]byte("/busy")) != 0 {
				got++
			}
			continue
		}
		p.slot(fmt.Appendf(nil, "/scan/x%dy", i))
	}
	names := p.names()
	if len(names) != 2 || names[1] != "/busy" || got == 0 {
		t.Fatalf("slots %v (busy counted %d times); want only /busy", names, got)
	}
}

// FuzzPathTemplate checks that a target gets the same template on both
// serving paths — the fast path templates the raw target, the net/http
// path req.URL.EscapedPath() — and that templates are bounded, start with
// '/', ignore the query and are their own template.
func FuzzPathTemplate(f *testing.F) {
	for _, s := range []string{"/", "/users/42?x=1", "/a%2Fb/12", "/%7Efoo/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/a/b;c/d", "//x", "/é", "/a?b#c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		tpl, ok := PathTemplate(nil, []byte(target))
		if !ok {
			if len(tpl) != 0 {
				t.Fatalf("PathTemplate(%q) failed but wrote %q", target, tpl)
			}
			return
		}
		if len(tpl) == 0 || tpl[0] != '/' || len(tpl) > maxTemplate {
			t.Fatalf("PathTemplate(%q) = %q: not a bounded path", target, tpl)
		}
		if again, ok := PathTemplate(nil, tpl); !ok || string(again) != string(tpl) {
			t.Fatalf("template %q of %q templates to %q", tpl, target, again)
		}
		path, _, _ := strings.Cut(target, "?")
		if q, ok := PathTemplate(nil, []byte(path+"?k=v")); !ok || string(q) != string(tpl) {
			t.Fatalf("PathTemplate(%q) = %q but with another query %q", target, tpl, q)
		}
		if !plainTarget([]byte(target)) {
			return // the fast path hands such targets to net/http
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // net/http refuses it: no slot is taken on either path
		}
		viaNet, ok := PathTemplate(nil, []byte(req.URL.EscapedPath()))
		if !ok || string(viaNet) != string(tpl) {
			t.Fatalf("target %q: fast path template %q, net/http path %q (%q)", target, tpl, viaNet, req.URL.EscapedPath())
		}
	})
}
