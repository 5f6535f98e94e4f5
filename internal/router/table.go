package router

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Route sends a share of the traffic to one revision.
type Route struct {
	Revision int
	// Weight is relative to the other routes' weights; 0 (or less) takes no
	// new traffic, not even from clients whose cookie names this revision:
	// only requests that a Match rule sends to it.
	Weight int
	// Backends are host:port addresses of the revision's ready replicas.
	// A route without backends takes no traffic.
	Backends []string
	// Holdback makes the route a sample of requests rather than of
	// clients: it takes its weighted share of every request, whatever the
	// request's affinity cookie says, and sets no cookie. A cookie naming
	// it is ignored (and replaced by the weighted choice's). It is how
	// the warm previous revision keeps a small share through the rollback
	// window without keeping the clients that were pinned to it.
	Holdback bool
}

// Affinity keeps a client on one revision with a cookie whose value is the
// revision number.
type Affinity struct {
	// Cookie is the cookie's name; empty means "lastgood-<app>".
	Cookie string
	// MaxAge is the cookie's lifetime; 0 or less makes a session cookie.
	MaxAge time.Duration
}

// Table is the desired routing for an app. Routes with the same revision
// are merged (weights added, backends concatenated). Match rules, tried in
// order, come before affinity and weights; see Match.
type Table struct {
	Routes   []Route
	Affinity *Affinity // nil: no session affinity
	Match    []Match
	// Limits bound the app's connections and waits; zero fields take
	// their defaults.
	Limits Limits
}

// table is the compiled, immutable form of a Table. Only its counters
// change after it is built.
type table struct {
	routes   []*route // routes that can take traffic, in Table order
	schedule []uint16 // one weighted cycle of indexes into routes
	next     atomic.Uint64
	cookie   string // affinity cookie name; "" when affinity is off
	matches  []matchRule
	holdback bool // some route is a holdback route (Route.Holdback)
	limits   *limits
}

// route is one revision's part of a compiled table.
type route struct {
	revision  int
	header    []string // Lastgood-Revision value
	setCookie []string // Set-Cookie value, nil when affinity is off or for a holdback route
	// sessionCookies are the Set-Cookie values per session bucket, nil
	// when affinity is off or for a holdback route.
	sessionCookies [][]string
	holdback       bool // Route.Holdback
	stats          *revisionStats
	backends       []*backend
	next           atomic.Uint64
	limits         *limits // the table's
}

// backend is the router's state for one replica address. The same value is
// carried from table to table while the address stays in use, so in-flight
// counts survive swaps.
type backend struct {
	addr     string
	inFlight atomic.Int64
	idle     connPool // the fast path's idle connections to addr
}

// pickRoute returns the next route of the weighted schedule.
func (t *table) pickRoute() *route {
	n := t.next.Add(1) - 1
	return t.routes[t.schedule[n%uint64(len(t.schedule))]]
}

// routeFor returns the route of revision rev, or nil.
func (t *table) routeFor(rev int) *route {
	for _, rt := range t.routes {
		if rt.revision == rev {
			return rt
		}
	}
	return nil
}

// stickyRoute returns the route an affinity cookie naming rev keeps a
// client on: rev's route unless it is a holdback route, nil otherwise.
func (t *table) stickyRoute(rev int) *route {
	if rt := t.routeFor(rev); rt != nil && !rt.holdback {
		return rt
	}
	return nil
}

// pickBackend returns the route's next backend in round-robin order.
func (rt *route) pickBackend() *backend {
	n := rt.next.Add(1) - 1
	return rt.backends[n%uint64(len(rt.backends))]
}

// alternative returns another backend than b for a retry, or nil if the
// route has no other.
func (rt *route) alternative(b *backend) *backend {
	for i, x := range rt.backends {
		if x != b {
			continue
		}
		for j := 1; j < len(rt.backends); j++ {
			if y := rt.backends[(i+j)%len(rt.backends)]; y != b {
				return y
			}
		}
	}
	return nil
}

// compile builds the immutable form of t. It must be called with r.mu held:
// it takes backend and revision state from the router's maps, creating what
// is missing.
func (r *Router) compile(t Table) *table {
	merged := mergeRoutes(t.Routes)
	c := &table{limits: compileLimits(t.Limits)}
	if t.Affinity != nil {
		c.cookie = t.Affinity.Cookie
		if c.cookie == "" {
			c.cookie = "lastgood-" + r.app
		}
	}
	var weights []int
	for _, m := range merged {
		r.revisionStats(m.Revision)
		if m.Weight <= 0 || len(m.Backends) == 0 {
			continue
		}
		c.routes = append(c.routes, r.newRoute(c, m, t.Affinity))
		weights = append(weights, m.Weight)
		c.holdback = c.holdback || m.Holdback
	}
	if len(c.routes) > 0 {
		c.schedule = schedule(weights)
	}
	if len(t.Match) > 0 {
		// Revisions of weight 0 get a route only when a rule names them.
		matchOnly := map[int]*route{}
		c.matches = compileMatches(t.Match, func(rev int) *route {
			if rt := c.routeFor(rev); rt != nil {
				return rt
			}
			if rt, ok := matchOnly[rev]; ok {
				return rt
			}
			var rt *route
			if i := slices.IndexFunc(merged, func(m Route) bool { return m.Revision == rev }); i >= 0 && len(merged[i].Backends) > 0 {
				rt = r.newRoute(c, merged[i], t.Affinity)
			}
			matchOnly[rev] = rt
			return rt
		})
	}
	return c
}

// newRoute builds the route of m, which has backends, in table c. r.mu
// must be held.
func (r *Router) newRoute(c *table, m Route, affinity *Affinity) *route {
	rt := &route{
		revision: m.Revision,
		header:   fullSlice(strconv.Itoa(m.Revision)),
		holdback: m.Holdback,
		stats:    r.revisionStats(m.Revision),
		limits:   c.limits,
	}
	if affinity != nil && !m.Holdback {
		rt.setCookie = fullSlice(affinityCookie(c.cookie, m.Revision, affinity.MaxAge))
		rt.sessionCookies = sessionCookies(c.cookie, m.Revision, affinity.MaxAge)
	}
	for _, addr := range m.Backends {
		rt.backends = append(rt.backends, r.backendFor(addr))
	}
	return rt
}

// mergeRoutes folds routes of the same revision into one, keeping the order
// of first appearance.
func mergeRoutes(routes []Route) []Route {
	var out []Route
	index := map[int]int{}
	for _, rt := range routes {
		i, ok := index[rt.Revision]
		if !ok {
			index[rt.Revision] = len(out)
			out = append(out, Route{Revision: rt.Revision, Weight: max(rt.Weight, 0), Backends: rt.Backends, Holdback: rt.Holdback})
			continue
		}
		out[i].Weight += max(rt.Weight, 0)
		out[i].Holdback = out[i].Holdback || rt.Holdback
		out[i].Backends = append(out[i].Backends[:len(out[i].Backends):len(out[i].Backends)], rt.Backends...)
	}
	return out
}

// affinityCookie renders the Set-Cookie value that pins a client to rev.
func affinityCookie(name string, rev int, maxAge time.Duration) string {
	c := http.Cookie{Name: name, Value: strconv.Itoa(rev), Path: "/", HttpOnly: true}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c.String()
}

// fullSlice returns a one-element slice with no spare capacity (a header
// value shared between requests), so that an append always copies.
func fullSlice(s string) []string {
	return []string{s}
}

// revisionStats returns the stats of rev, creating them. r.mu must be held.
func (r *Router) revisionStats(rev int) *revisionStats {
	s, ok := r.revisions[rev]
	if !ok {
		s = &revisionStats{revision: rev}
		r.revisions[rev] = s
	}
	return s
}

// backendFor returns the state of addr, creating it. r.mu must be held.
func (r *Router) backendFor(addr string) *backend {
	b, ok := r.backends[addr]
	if !ok {
		b = &backend{addr: addr}
		r.backends[addr] = b
	}
	return b
}

// prune forgets backends that the current table does not use and that have
// nothing in flight. r.mu must be held, and c must already be stored: a
// request that still holds an older table either counted itself in flight
// before the store (and so is seen here) or will notice the swap and pick
// again from c.
func (r *Router) prune(c *table) {
	used := map[*backend]bool{}
	for _, rt := range c.routes {
		for _, b := range rt.backends {
			used[b] = true
		}
	}
	for _, m := range c.matches {
		if m.route != nil {
			for _, b := range m.route.backends {
				used[b] = true
			}
		}
	}
	for addr, b := range r.backends {
		if !used[b] && b.inFlight.Load() == 0 {
			delete(r.backends, addr)
			b.idle.closeIdle(true)
		}
	}
}
