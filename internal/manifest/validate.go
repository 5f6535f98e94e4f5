package manifest

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// validator collects every problem with a defaulted App. Each problem names
// the field and what is wanted; its line is where the field (or the nearest
// enclosing one) is written.
type validator struct {
	file string
	pos  map[string]position
	errs Errors
}

func (v *validator) fail(path, format string, args ...any) {
	p := path
	for {
		if _, ok := v.pos[p]; ok || p == "" {
			break
		}
		p = parent(p)
	}
	at := v.pos[p]
	v.errs = append(v.errs, &FieldError{File: v.file, Line: at.line, Column: at.column,
		Field: path, Message: fmt.Sprintf(format, args...)})
}

// between checks lo <= n <= hi.
func (v *validator) between(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(path, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.fail(path, "must be a duration greater than 0, got %s", d)
	}
}

func (v *validator) notNegative(path string, d Duration) {
	if d < 0 {
		v.fail(path, "must not be negative, got %s", d)
	}
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	maxNameLength = 63
	maxReplicas   = 256
	maxHistory    = 1000
)

// adopts says whether the app takes over a Deployment, whose pod
// template stands in for image.
func adopts(a *App) bool { return a.Kubernetes != nil && a.Kubernetes.WorkloadRef != nil }

// reservedEnv are the variables lastgood sets for every replica.
var reservedEnv = []string{"PORT", "LASTGOOD_APP", "LASTGOOD_REVISION"}

func (v *validator) app(a *App) {
	switch {
	case a.Name == "":
		v.fail("name", "is required")
	case len(a.Name) > maxNameLength:
		v.fail("name", "must be at most %d characters, got %d", maxNameLength, len(a.Name))
	case !namePattern.MatchString(a.Name):
		v.fail("name", "must be lowercase letters, digits and '-', starting and ending with a letter or digit, got %q", a.Name)
	}
	switch {
	case a.Listen != "":
		v.hostPort("listen", a.Listen)
	case a.Image == "" && !adopts(a):
		v.fail("listen", "is required for the local engine: the address where lastgood serves this app, like 127.0.0.1:8080")
	}
	v.between("replicas", a.Replicas, 1, maxReplicas)
	if a.Run == nil && a.Image == "" && !adopts(a) {
		v.fail("run", "is required: set run (to run the app on this machine) or image (to run it on Kubernetes)")
	}
	if a.Run != nil {
		v.run(a.Run)
	}
	if a.Image != "" && strings.TrimSpace(a.Image) != a.Image {
		v.fail("image", "must not start or end with spaces, got %q", a.Image)
	}
	if a.Kubernetes != nil {
		v.kubernetes(a.Kubernetes)
	}
	v.probe("probes.readiness", a.Probes.Readiness)
	v.probe("probes.liveness", a.Probes.Liveness)
	if s := a.SessionAffinity; s != nil {
		// The default cookie name is valid whenever the app name is.
		if s.CookieName != "lastgood-"+a.Name && !validToken(s.CookieName) {
			v.fail("sessionAffinity.cookieName", "must be a cookie name: letters, digits and !#$%%&'*+-.^_`|~, got %q", s.CookieName)
		}
		v.positive("sessionAffinity.maxAge", s.MaxAge)
	}
	if r := a.Router; r != nil {
		v.router(r)
	}
	v.strategy(a)
	if a.Analysis != nil {
		v.analysis(a.Analysis)
		v.perRoute(a)
	}
	v.positive("rollback.progressDeadline", a.Rollback.ProgressDeadline)
	v.notNegative("rollback.window", a.Rollback.Window)
	switch a.Rollback.OnNoData {
	case "wait", "pass", "fail":
	default:
		v.fail("rollback.onNoData", "must be wait, pass or fail, got %q", a.Rollback.OnNoData)
	}
	if a.Rollback.SLO != nil {
		v.slo(a.Rollback.SLO)
	}
	v.holdback(a)
	v.between("history", a.History, 1, maxHistory)
	v.notifications(a.Notifications)
	v.flags(a.Flags)
	if a.Database != nil {
		v.database(a.Database)
	}
}

// maxConnections bounds router.maxConnections.
const maxConnections = 1_000_000

func (v *validator) router(r *Router) {
	v.notNegative("router.responseTimeout", r.ResponseTimeout)
	v.between("router.maxConnections", r.MaxConnections, 1, maxConnections)
	v.positive("router.headerTimeout", r.HeaderTimeout)
	v.positive("router.bodyTimeout", r.BodyTimeout)
	v.positive("router.bodyIdleTimeout", r.BodyIdleTimeout)
	v.positive("router.idleTimeout", r.IdleTimeout)
	if r.Routes != nil {
		v.between("router.routes", *r.Routes, 0, MaxRoutes)
	}
}

// hostPort checks an address the router listens on: an IP address or
// localhost, and a numeric port.
func (v *validator) hostPort(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(path, "must be host:port, like 127.0.0.1:8080, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.fail(path, "port must be a number between 1 and 65535, got %q", port)
	}
	if host != "localhost" && net.ParseIP(host) == nil {
		v.fail(path, "host must be an IP address or localhost, got %q", host)
	}
}

func (v *validator) run(r *Run) {
	if len(r.Command) == 0 {
		v.fail("run.command", "is required: the program and its arguments, like [./bin/web, --flag]")
	}
	for i, arg := range r.Command {
		switch {
		case arg == "":
			v.fail(index("run.command", i), "must not be empty")
		case strings.ContainsRune(arg, 0):
			v.fail(index("run.command", i), "must not contain a NUL character")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Env)) {
		path := child("run.env", name)
		switch {
		case !envPattern.MatchString(name):
			v.fail(path, "variable names are letters, digits and _, not starting with a digit")
		case slices.Contains(reservedEnv, name):
			v.fail(path, "is set by lastgood for every replica (%s); choose another name", strings.Join(reservedEnv, ", "))
		case strings.ContainsRune(r.Env[name], 0):
			v.fail(path, "must not contain a NUL character")
		}
	}
	first := map[string]int{}
	for i, p := range r.Artifacts {
		path := index("run.artifacts", i)
		if p == "" {
			v.fail(path, "must not be empty")
			continue
		}
		clean := filepath.Clean(p)
		if j, dup := first[clean]; dup {
			v.fail(path, "%q is listed twice (also run.artifacts[%d])", p, j)
			continue
		}
		first[clean] = i
	}
}

func (v *validator) probe(path string, p *Probe) {
	if p == nil {
		return
	}
	switch {
	case p.HTTP != "" && p.TCP:
		v.fail(path, "set one of http and tcp, not both")
	case p.HTTP == "" && !p.TCP:
		v.fail(path, "set one of http (a path like /healthz) and tcp (true)")
	case p.HTTP != "" && !strings.HasPrefix(p.HTTP, "/"):
		v.fail(path+".http", "must be a path starting with /, got %q", p.HTTP)
	}
	v.notNegative(path+".initialDelay", p.InitialDelay)
	v.positive(path+".period", p.Period)
	v.positive(path+".timeout", p.Timeout)
	if p.Timeout > p.Period && p.Period > 0 {
		v.fail(path+".timeout", "must not be longer than period (%s), got %s", p.Period, p.Timeout)
	}
	if p.FailureThreshold < 1 {
		v.fail(path+".failureThreshold", "must be at least 1, got %d", p.FailureThreshold)
	}
	if p.SuccessThreshold < 1 {
		v.fail(path+".successThreshold", "must be at least 1, got %d", p.SuccessThreshold)
	}
}

// validToken reports whether s is a token (RFC 9110 section 5.6.2): what
// an HTTP header name is, and what RFC 6265 allows as a cookie name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

// setNames lists the set fields among names (set[i] tells whether names[i]
// is set), as "a and b", for "set only one of" messages.
func setNames(names []string, set []bool) []string {
	var out []string
	for i, n := range names {
		if set[i] {
			out = append(out, n)
		}
	}
	return out
}

// list joins names as "a, b and c".
func list(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// maxHoldback is the largest rollback.holdback: beyond half the traffic
// the "previous" revision would still be the main one.
const maxHoldback = 50

func (v *validator) holdback(a *App) {
	h := a.Rollback.HoldbackPercent()
	switch {
	case h == 0:
	case h < 0 || h > maxHoldback:
		v.fail("rollback.holdback", "must be between 0%% and %d%% of traffic, got %d%%", maxHoldback, h)
	case a.Strategy.Rolling != nil:
		v.fail("rollback.holdback", "a rolling rollout replaces replicas and keeps no previous revision warm to hold traffic back on; remove it or use canary or blueGreen")
	case a.Rollback.Window == 0:
		v.fail("rollback.holdback", "needs a rollback window: traffic is held back on the previous revision only while it stays warm (rollback.window is 0)")
	}
}
