package access

import (
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says what a Gate accepts.
type Config struct {
	// Tokens are the credentials; none means the API is open: every
	// caller is Anonymous with the admin role (lastgood refuses to start
	// that way on an address other machines can reach, unless told to).
	Tokens *Tokens
	// AllowedHosts are the Host names, besides localhost and IP
	// addresses, that requests may carry: "name" (any port) or
	// "name:port".
	AllowedHosts []string
	// APIPrefix is the path prefix of the JSON API (default "/api/").
	// Writes under it must be programmatic; writes anywhere else are the
	// dashboard's forms.
	APIPrefix string
	// RawPrefix is the path prefix under which writes carry
	// application/octet-stream rather than JSON (artifact uploads).
	RawPrefix string
	// Key signs the dashboard's session cookies (at least 32 bytes);
	// random for the process when empty.
	Key []byte
	// Now is the clock for session lifetimes; time.Now when nil.
	Now func() time.Time
}

// Gate enforces the rules of Wrap.
type Gate struct {
	cfg   Config
	key   []byte
	hosts map[string]bool // lowercase name or name:port
}

// New returns a gate, or an error naming a bad allowed host.
func New(cfg Config) (*Gate, error) {
	if cfg.APIPrefix == "" {
		cfg.APIPrefix = "/api/"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gate{cfg: cfg, key: cfg.Key, hosts: map[string]bool{}}
	if len(g.key) < 32 {
		g.key = make([]byte, 32)
		rand.Read(g.key)
	}
	var errs []error
	for _, h := range cfg.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ \t*") {
			errs = append(errs, fmt.Errorf("allowed host %q: want a host name, optionally with :PORT (no scheme, path or wildcard)", h))
			continue
		}
		g.hosts[strings.TrimSuffix(h, ".")] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return g, nil
}

// Open reports whether the gate has no tokens: every caller may do
// everything.
func (g *Gate) Open() bool { return g.cfg.Tokens.Len() == 0 }

func (g *Gate) now() time.Time { return g.cfg.Now() }

// Deny answers a request the rules refuse. Kind is "forbidden" or
// "unauthorized".
type Deny func(w http.ResponseWriter, r *http.Request, code int, kind, msg string)

// safe methods change nothing; every other method must pass the write
// rules, whatever route it reaches, so a route added later cannot forget
// them.
func safe(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// Wrap enforces, before h runs:
//
//   - every request: its Host is localhost, an IP address, or an allowed
//     host (a DNS-rebinding page carries its own name); a bearer token, when
//     sent, is right. The caller's Identity goes into the context.
//   - every request with a method other than GET and HEAD: it does not come
//     from another site (Sec-Fetch-Site) or origin (Origin); under the API
//     prefix its body is application/json (application/octet-stream under
//     the raw prefix) and it carries X-Lastgood-Client or a bearer token —
//     neither of which a browser sends across origins without a CORS
//     preflight that lastgood never grants; elsewhere it is a dashboard form
//     with the CSRF token of its session cookie; and the caller is a
//     deployer or admin.
func (g *Gate) Wrap(h http.Handler, deny Deny) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.checkHost(r.Host); err != nil {
			deny(w, r, http.StatusForbidden, "forbidden", err.Error())
			return
		}
		id, err := g.identify(r)
		if err != nil {
			deny(w, r, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		if !safe(r.Method) {
			if err := g.checkWrite(r, id); err != nil {
				deny(w, r, http.StatusForbidden, "forbidden", err.Error())
				return
			}
			if code, kind, msg := need(id, Deployer, r.Method+" "+r.URL.Path); code != 0 {
				deny(w, r, code, kind, msg)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// identify finds who sent r: a bearer token anywhere, the session cookie
// outside the API. A wrong bearer token is an error; no credential is
// NoRole.
func (g *Gate) identify(r *http.Request) (Identity, error) {
	if g.Open() {
		return Identity{Name: Anonymous, Role: Admin}, nil
	}
	if a := r.Header.Get("Authorization"); a != "" {
		secret, ok := strings.CutPrefix(a, "Bearer ")
		if tok, found := g.cfg.Tokens.Lookup(secret); ok && found {
			return Identity{Name: tok.Name, Role: tok.Role, Via: "token"}, nil
		}
		return Identity{}, errors.New("wrong token: this lastgood has no such token (set LASTGOOD_TOKEN)")
	}
	if !strings.HasPrefix(r.URL.Path, g.cfg.APIPrefix) {
		if _, id, ok := g.session(r); ok {
			return id, nil
		}
	}
	return Identity{}, nil
}

// need says why id may not do what needs role: 401 without a
// credential, 403 with too small a role; 0 when it may.
func need(id Identity, role Role, what string) (int, string, string) {
	switch {
	case id.Role >= role:
		return 0, "", ""
	case id.Role == NoRole:
		return http.StatusUnauthorized, "unauthorized", "missing token: this lastgood wants one (set LASTGOOD_TOKEN)"
	default:
		return http.StatusForbidden, "forbidden", fmt.Sprintf("token %s has the %s role; %s needs %s", id.Name, id.Role, brief(what), role)
	}
}

// brief shortens the digests in a request's path for a message.
func brief(what string) string {
	parts := strings.Split(what, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "sha256:") && len(p) > len("sha256:")+12 {
			parts[i] = p[:len("sha256:")+12] + "…"
		}
	}
	return strings.Join(parts, "/")
}

// Require lets through only callers with at least role; others get 401
// (no credential) or 403 from deny.
func Require(role Role, deny Deny, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, kind, msg := need(IdentityFrom(r.Context()), role, r.Method+" "+r.URL.Path); code != 0 {
			deny(w, r, code, kind, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkHost accepts localhost, IP literals and the allowed hosts. An IP
// literal cannot be rebound: a page whose address bar holds an IP is on
// that IP, so only names need to be listed.
func (g *Gate) checkHost(hostport string) error {
	if hostport == "" {
		return errors.New("the request has no Host header")
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || net.ParseIP(host) != nil {
		return nil
	}
	if g.hosts[host] || g.hosts[strings.TrimSuffix(strings.ToLower(hostport), ".")] {
		return nil
	}
	return fmt.Errorf("Host %q is not allowed: lastgood answers localhost, IP addresses and the names given with --allowed-host (or LASTGOOD_ALLOWED_HOSTS); a page that reached it under another name may be a DNS-rebinding attack", hostport)
}

// checkWrite applies the write rules of Wrap to r.
func (g *Gate) checkWrite(r *http.Request, id Identity) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("refused a %s request from another site (Sec-Fetch-Site: %s)", r.Method, site)
	}
	origin := r.Header.Get("Origin")
	if origin != "" && !sameOrigin(origin, r.Host) {
		return fmt.Errorf("refused a %s request from another origin (Origin: %s)", r.Method, origin)
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(r.URL.Path, g.cfg.APIPrefix) {
		want := "application/json"
		if g.cfg.RawPrefix != "" && strings.HasPrefix(r.URL.Path, g.cfg.RawPrefix) {
			want = "application/octet-stream"
		}
		if ctype != want {
			return fmt.Errorf("a %s request to %s must have Content-Type: %s, got %q", r.Method, r.URL.Path, want, r.Header.Get("Content-Type"))
		}
		if r.Header.Get("X-Lastgood-Client") == "" && id.Via != "token" {
			return fmt.Errorf("a %s request to %s must carry a bearer token or the header X-Lastgood-Client: 1 (the lastgood CLI sends it)", r.Method, r.URL.Path)
		}
		return nil
	}
	// A dashboard form.
	if ctype != "application/x-www-form-urlencoded" {
		return fmt.Errorf("a %s request to %s must be a dashboard form (application/x-www-form-urlencoded), got %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if origin == "" && r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return errors.New("a dashboard form must say where it comes from (Origin or Sec-Fetch-Site); reload the dashboard and try again")
	}
	cookie, _, ok := g.session(r)
	if !ok {
		return errors.New("no dashboard session: reload the dashboard (with /?token=… when it asks) and try again")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("the form cannot be read: %v", err)
	}
	if !hmacEqual(r.PostForm.Get(CSRFField), g.csrf(cookie)) {
		return errors.New("the form's CSRF token does not match this session: reload the dashboard and try again")
	}
	return nil
}

// sameOrigin reports whether an Origin header names the host:port the
// request was sent to. The scheme is not compared: a TLS-terminating proxy
// in front may change it, and the host alone already tells a foreign page.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.Host != "" && strings.EqualFold(u.Host, host)
}
