package access

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func gate(t testing.TB, toks *Tokens, hosts ...string) *Gate {
	t.Helper()
	g, err := New(Config{Tokens: toks, AllowedHosts: hosts, RawPrefix: "/api/v1/artifacts/"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func teamTokens(t testing.TB) *Tokens {
	t.Helper()
	toks := &Tokens{}
	for _, tok := range []struct {
		name   string
		role   Role
		secret string
	}{{"vera", Viewer, "viewer-secret-0123456789"}, {"dan", Deployer, "deployer-secret-0123456789"}, {"ada", Admin, "admin-secret-0123456789"}} {
		if err := toks.Add(tok.name, tok.role, tok.secret); err != nil {
			t.Fatal(err)
		}
	}
	return toks
}

// serveGate runs one request through Wrap and reports the status and, when
// the handler ran, who it saw.
func serveGate(g *Gate, r *http.Request) (int, string, Identity) {
	var seen Identity
	ran := false
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran, seen = true, IdentityFrom(r.Context())
	}), func(w http.ResponseWriter, r *http.Request, code int, kind, msg string) {
		http.Error(w, kind+": "+msg, code)
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if ran {
		return w.Code, w.Body.String(), seen
	}
	return w.Code, w.Body.String(), Identity{Name: "<handler did not run>"}
}

func TestHostRule(t *testing.T) {
	g := gate(t, nil, "lastgood.internal", "ci.example:7443")
	for host, ok := range map[string]bool{
		"127.0.0.1:7070": true, "localhost:7070": true, "LOCALHOST": true, "localhost.:7070": true,
		"[::1]:7070": true, "10.1.2.3:7070": true, "[fe80::1]": true, "::1": true,
		"lastgood.internal": true, "lastgood.internal:7070": true, "LastGood.Internal:1": true,
		"ci.example:7443": true,
		"":                false, "evil.example:7070": false, "ci.example:7070": false, "ci.example": false,
		"localhost.evil.example": false, "127.0.0.1.nip.io": false, "lastgood.internal.evil": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
		r.Host = host
		code, body, _ := serveGate(g, r)
		if (code == 200) != ok {
			t.Errorf("Host %q: %d %s", host, code, body)
		}
		if !ok && !strings.Contains(body, "--allowed-host") && host != "" {
			t.Errorf("Host %q: the refusal does not say how to allow it: %s", host, body)
		}
	}
	if _, err := New(Config{AllowedHosts: []string{"http://x/"}}); err == nil {
		t.Error("an allowed host with a scheme was accepted")
	}
}

// write builds a request as the CLI sends one, which tests then spoil.
func write(method, path, ctype, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Host = "127.0.0.1:7070"
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	r.Header.Set("X-Lastgood-Client", "1")
	return r
}

func TestWriteRulesOfTheAPI(t *testing.T) {
	g := gate(t, nil)
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"the CLI's apply", func() *http.Request { return write("POST", "/api/v1/apply", "application/json", "{}") }, 200},
		{"with a charset", func() *http.Request { return write("POST", "/api/v1/apply", "application/json; charset=utf-8", "{}") }, 200},
		{"an upload", func() *http.Request {
			return write("PUT", "/api/v1/artifacts/sha256:x", "application/octet-stream", "x")
		}, 200},
		{"same origin", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Set("Origin", "http://127.0.0.1:7070")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			return r
		}, 200},
		{"text/plain", func() *http.Request { return write("POST", "/api/v1/apply", "text/plain", "{}") }, 403},
		{"a form", func() *http.Request {
			return write("POST", "/api/v1/apps/x/undo", "application/x-www-form-urlencoded", "")
		}, 403},
		{"no type", func() *http.Request { return write("POST", "/api/v1/apps/x/undo", "", "") }, 403},
		{"JSON upload", func() *http.Request { return write("PUT", "/api/v1/artifacts/sha256:x", "application/json", "x") }, 403},
		{"octet-stream apply", func() *http.Request { return write("POST", "/api/v1/apply", "application/octet-stream", "{}") }, 403},
		{"no client header", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Del("X-Lastgood-Client")
			return r
		}, 403},
		{"another origin", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Set("Origin", "http://127.0.0.2:8000")
			return r
		}, 403},
		{"origin null", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Set("Origin", "null")
			return r
		}, 403},
		{"cross-site", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403},
		{"same-site (an app on another port)", func() *http.Request {
			r := write("POST", "/api/v1/apply", "application/json", "{}")
			r.Header.Set("Sec-Fetch-Site", "same-site")
			return r
		}, 403},
		{"DELETE", func() *http.Request { return write("DELETE", "/api/v1/apps/x", "text/plain", "") }, 403},
		{"PATCH", func() *http.Request { return write("PATCH", "/api/v1/apps/x", "text/plain", "") }, 403},
		{"OPTIONS (a preflight)", func() *http.Request { return write("OPTIONS", "/api/v1/apply", "", "") }, 403},
		{"a form to a dashboard path without a session", func() *http.Request {
			r := write("POST", "/apps/x/undo", "application/x-www-form-urlencoded", "")
			r.Header.Set("Origin", "http://127.0.0.1:7070")
			return r
		}, 403},
	} {
		code, body, _ := serveGate(g, tc.req())
		if code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
	}
}

func TestRoles(t *testing.T) {
	g := gate(t, teamTokens(t))
	bearer := func(r *http.Request, secret string) *http.Request {
		r.Header.Set("Authorization", "Bearer "+secret)
		return r
	}
	get := func() *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/apps", nil)
		r.Host = "127.0.0.1"
		return r
	}
	post := func() *http.Request { return write("POST", "/api/v1/apply", "application/json", "{}") }

	if code, _, id := serveGate(g, get()); code != 200 || id.Role != NoRole {
		t.Errorf("GET without a token: %d %+v (the route decides)", code, id)
	}
	if code, body, _ := serveGate(g, bearer(get(), "nope")); code != 401 || !strings.Contains(body, "wrong token") {
		t.Errorf("a wrong token: %d %s", code, body)
	}
	if code, _, id := serveGate(g, bearer(get(), "viewer-secret-0123456789")); code != 200 || id.Name != "vera" || id.Role != Viewer || id.Via != "token" {
		t.Errorf("viewer GET: %d %+v", code, id)
	}
	if code, body, _ := serveGate(g, post()); code != 401 {
		t.Errorf("POST without a token: %d %s", code, body)
	}
	if code, body, _ := serveGate(g, bearer(post(), "viewer-secret-0123456789")); code != 403 || !strings.Contains(body, "token vera has the viewer role; POST /api/v1/apply needs deployer") {
		t.Errorf("viewer POST: %d %s", code, body)
	}
	for secret, name := range map[string]string{"deployer-secret-0123456789": "dan", "admin-secret-0123456789": "ada"} {
		r := bearer(post(), secret)
		r.Header.Del("X-Lastgood-Client") // a bearer token is a non-simple header too
		if code, body, id := serveGate(g, r); code != 200 || id.Name != name {
			t.Errorf("%s POST: %d %s", name, code, body)
		}
	}
	// Require refuses a role below its own.
	deny := func(w http.ResponseWriter, r *http.Request, code int, kind, msg string) { http.Error(w, msg, code) }
	h := g.Wrap(Require(Admin, deny, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), deny)
	for secret, want := range map[string]int{"": 401, "viewer-secret-0123456789": 403, "deployer-secret-0123456789": 403, "admin-secret-0123456789": 200} {
		r := get()
		if secret != "" {
			bearer(r, secret)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Require(Admin) with %q: %d, want %d", secret, w.Code, want)
		}
	}
}

// login opens a session with secret and returns its cookie and CSRF token.
func login(t *testing.T, g *Gate, secret string) (*http.Cookie, string) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/?token="+secret, nil)
	if _, ok := g.Login(w, r, secret); !ok {
		t.Fatalf("login with %q refused", secret)
	}
	c := w.Result().Cookies()[0]
	if c.Name != CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, secret) {
		t.Fatalf("cookie %+v", c)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	return c, g.Session(httptest.NewRecorder(), r)
}

func form(cookie *http.Cookie, csrf, origin string) *http.Request {
	r := write("POST", "/apps/web/abort", "application/x-www-form-urlencoded", url.Values{CSRFField: {csrf}}.Encode())
	r.Header.Del("X-Lastgood-Client")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

func TestDashboardForms(t *testing.T) {
	g := gate(t, teamTokens(t))
	dan, danCSRF := login(t, g, "deployer-secret-0123456789")
	vera, veraCSRF := login(t, g, "viewer-secret-0123456789")
	self := "http://127.0.0.1:7070"
	if code, body, id := serveGate(g, form(dan, danCSRF, self)); code != 200 || id.Name != "dan" || id.Via != "cookie" {
		t.Fatalf("the deployer's form: %d %s %+v", code, body, id)
	}
	for name, tc := range map[string]struct {
		r    *http.Request
		want string
	}{
		"another session's CSRF token": {form(dan, veraCSRF, self), "CSRF token does not match"},
		"no CSRF token":                {form(dan, "", self), "CSRF token does not match"},
		"no cookie":                    {form(nil, danCSRF, self), "no dashboard session"},
		"another origin":               {form(dan, danCSRF, "http://127.0.0.2:7070"), "another origin"},
		"no origin":                    {form(dan, danCSRF, ""), "must say where it comes from"},
		"a viewer":                     {form(vera, veraCSRF, self), "vera has the viewer role"},
		"a forged cookie": {form(&http.Cookie{Name: CookieName, Value: strings.Replace(dan.Value, "v2.", "v2.", 1) + "x"}, danCSRF, self),
			"no dashboard session"},
	} {
		code, body, _ := serveGate(g, tc.r)
		if code == 200 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	// The session cookie does not open the API.
	r := httptest.NewRequest("GET", "/api/v1/apps", nil)
	r.Host = "127.0.0.1"
	r.AddCookie(dan)
	if _, _, id := serveGate(g, r); id.Role != NoRole {
		t.Errorf("the cookie opened the API: %+v", id)
	}
}

func TestSessionsEnd(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	toks := teamTokens(t)
	key := []byte(strings.Repeat("k", 32))
	g, _ := New(Config{Tokens: toks, Key: key, Now: func() time.Time { return now }})
	c, _ := login(t, g, "deployer-secret-0123456789")
	if _, ok := g.verify(c.Value); !ok {
		t.Fatal("a fresh cookie does not verify")
	}
	// The same key after a restart still knows it.
	g2, _ := New(Config{Tokens: toks, Key: key, Now: func() time.Time { return now.Add(SessionLife - time.Second) }})
	if id, ok := g2.verify(c.Value); !ok || id.Name != "dan" {
		t.Fatal("the cookie did not survive a restart with the same key")
	}
	g3, _ := New(Config{Tokens: toks, Key: key, Now: func() time.Time { return now.Add(SessionLife + time.Second) }})
	if _, ok := g3.verify(c.Value); ok {
		t.Fatal("an expired cookie verified")
	}
	// A new secret for the same name ends its sessions.
	other := &Tokens{}
	other.Add("dan", Deployer, "a-new-secret-for-dan-0123")
	g4, _ := New(Config{Tokens: other, Key: key, Now: func() time.Time { return now }})
	if _, ok := g4.verify(c.Value); ok {
		t.Fatal("a cookie of the old secret verified")
	}
	// Another key knows nothing.
	g5, _ := New(Config{Tokens: toks, Now: func() time.Time { return now }})
	if _, ok := g5.verify(c.Value); ok {
		t.Fatal("a cookie verified under another key")
	}
}

func TestOpenGateGivesASession(t *testing.T) {
	g := gate(t, nil)
	w := httptest.NewRecorder()
	csrf := g.Session(w, httptest.NewRequest("GET", "/", nil))
	cs := w.Result().Cookies()
	if csrf == "" || len(cs) != 1 {
		t.Fatalf("csrf %q, cookies %v", csrf, cs)
	}
	if code, body, id := serveGate(g, form(cs[0], csrf, "http://127.0.0.1:7070")); code != 200 || id.Name != Anonymous || id.Role != Admin {
		t.Fatalf("anonymous form: %d %s %+v", code, body, id)
	}
	// Without the session, the form is refused even though anyone may act.
	if code, _, _ := serveGate(g, form(nil, csrf, "http://127.0.0.1:7070")); code != 403 {
		t.Fatalf("anonymous form without its cookie: %d", code)
	}
}

// FuzzSessionCookie: no cookie value verifies unless the gate minted it,
// and none makes verify panic.
func FuzzSessionCookie(f *testing.F) {
	g := gate(f, teamTokens(f))
	good := g.mint("dan", [32]byte{})
	f.Add(good)
	f.Add("v2.ZGFu.1.AAAA.AAAA")
	f.Add("v2....")
	f.Fuzz(func(t *testing.T, v string) {
		if _, ok := g.verify(v); ok {
			t.Fatalf("verified %q", v)
		}
	})
}

// FuzzHost: whatever Host the gate accepts names, as net/url reads it,
// localhost, an IP address or an allowed host.
func FuzzHost(f *testing.F) {
	g := gate(f, nil, "lastgood.internal")
	for _, s := range []string{"127.0.0.1:7070", "[::1]:1", "localhost", "lastgood.internal:80", "evil:80", "[::1", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if g.checkHost(host) != nil || net.ParseIP(host) != nil { // an unbracketed IPv6 literal is an IP too
			return
		}
		name := strings.TrimSuffix(strings.ToLower((&url.URL{Host: host}).Hostname()), ".")
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = strings.TrimSuffix(strings.ToLower(h), ".")
		}
		if name != "localhost" && net.ParseIP(name) == nil && name != "lastgood.internal" {
			t.Fatalf("accepted Host %q (name %q)", host, name)
		}
	})
}

// FuzzSameOrigin: an Origin the gate takes for the request's own names,
// as net/url parses it, exactly that host:port.
func FuzzSameOrigin(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:7070", "https://127.0.0.1:7070", "null", "http://127.0.0.1:7070/", "http://a@127.0.0.1:7070", "file://"} {
		f.Add(s, "127.0.0.1:7070")
	}
	f.Fuzz(func(t *testing.T, origin, host string) {
		if !sameOrigin(origin, host) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, host) || u.Path != "" || u.User != nil {
			t.Fatalf("Origin %q taken for host %q (url.Parse: %+v, %v)", origin, host, u, err)
		}
	})
}
