// Package router is lastgood's own reverse proxy for one app: it splits
// traffic between revisions by weight, keeps a client on one revision for a
// session, drains replicas before they are stopped, and counts requests,
// status classes and latency per revision — the first signal that rollout
// checks read.
//
// A revision is chosen for each request in this order: the first Match rule
// of the table that the request satisfies (a header or cookie with an exact
// value; this reaches a revision even at weight 0, and sets no affinity
// cookie), then the client's affinity cookie, then the weighted schedule.
// A holdback route (Route.Holdback) is the exception: it takes its weighted
// share of every request that no Match rule takes, before cookies are read,
// and sets no cookie.
// A table without Match rules costs nothing for them: no header is
// scanned and no cookie parsed for their sake.
//
// The routing table is an immutable value behind an atomic pointer: Set
// compiles a Table and swaps it in with one store, and the request path takes
// no lock and does no map lookup.
package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RevisionHeader is the response header naming the revision that served the
// request.
const RevisionHeader = "Lastgood-Revision"

// Router is the reverse proxy of one app. The zero value is not usable; call
// New.
type Router struct {
	app       string
	noRoute   []byte
	tooMany   []byte // the answer to a connection beyond the cap
	table     atomic.Pointer[table]
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	buffers   *bufferPool   // copy buffers of both paths
	handoffs  atomic.Uint64 // connections Serve gave to net/http
	refused   atomic.Uint64 // connections refused beyond the cap
	// cut is set once a shutdown's grace period is over: requests it
	// ends are not their revision's failures.
	cut atomic.Bool
	// forceNetHTTP hands every connection to net/http: the reference the
	// differential fuzz targets compare the fast path with.
	forceNetHTTP bool

	mu        sync.Mutex // guards the fields below, and serialises Set
	backends  map[string]*backend
	revisions map[int]*revisionStats
	paths     *paths  // route slots, shared by every revision
	serving   *server // the running Serve, if any
}

// New returns a router for app with an empty table: until Set gives it a
// route, every request gets 503.
func New(app string) *Router {
	r := &Router{
		app:       app,
		noRoute:   []byte("lastgood: no ready replica for " + app + "\n"),
		tooMany:   tooManyResponse(app),
		backends:  map[string]*backend{},
		revisions: map[int]*revisionStats{},
		paths:     newPaths(0),
	}
	r.table.Store(&table{limits: compileLimits(Limits{})})
	r.transport = newTransport()
	r.buffers = newBufferPool(pooledBuffers, copyBufferSize)
	r.proxy = r.newProxy()
	return r
}

// Set makes t the routing table. Requests already in flight finish on the
// backend they started with.
func (r *Router) Set(t Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.compile(t)
	r.paths.setLimit(t.Limits.Routes)
	r.table.Store(c)
	r.prune(c)
	if r.serving != nil {
		r.serving.renewHatch(c.limits)
	}
}

// RefusedConnections counts the client connections refused because the
// app had MaxConnections open.
func (r *Router) RefusedConnections() uint64 { return r.refused.Load() }

// ServeHTTP proxies req to a backend of the revision picked for it.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	rt, b, setCookie := r.pick((*netRequest)(req))
	if rt == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(r.noRoute)
		return
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	st := &hatchState{cancel: cancel, cut: &r.cut, method: req.Method, path: req.URL.Path}
	ex := &exchange{Context: ctx, route: rt, backend: b, setCookie: setCookie, slot: r.paths.slot([]byte(req.URL.EscapedPath())), session: r.sessionOf((*netRequest)(req), rt, setCookie), start: start, hatch: st}
	rt.stats.inFlight.Add(1)
	defer ex.finish()
	defer st.end(ex)
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		req.Body = &deadlineBody{ReadCloser: req.Body, rc: http.NewResponseController(w), st: st,
			end: start.Add(rt.limits.BodyTimeout), idle: rt.limits.BodyIdleTimeout}
	}
	r.proxy.ServeHTTP(noSniffWriter{w}, req.WithContext(ex))
	ex.completed = true
}

// pick chooses the route and backend for a request and counts the backend
// in flight: the first match rule's route, else the affinity cookie's, else
// the weighted schedule's. setCookie reports that the response should carry
// the affinity cookie (only for the last). It returns a nil route when no
// route can take the request.
func (r *Router) pick(req requestView) (rt *route, b *backend, setCookie bool) {
	for {
		t := r.table.Load()
		rt, setCookie = nil, false
		if len(t.matches) > 0 {
			rt = t.matched(req) // matched requests get no affinity cookie
		}
		if rt == nil {
			if len(t.routes) == 0 {
				return nil, nil, false
			}
			var weighted *route
			if t.holdback {
				// A holdback route takes its share of every request,
				// cookie or not: the weighted choice comes first.
				if weighted = t.pickRoute(); weighted.holdback {
					rt = weighted
				}
			}
			if rt == nil && t.cookie != "" {
				if rev, ok := req.revision(t.cookie); ok {
					rt = t.stickyRoute(rev)
				}
			}
			if rt == nil {
				if weighted == nil {
					weighted = t.pickRoute()
				}
				rt = weighted
				setCookie = rt.setCookie != nil
			}
		}
		b = rt.pickBackend()
		b.inFlight.Add(1)
		// If the table is still current, the count above happened before
		// any later Set, so WaitIdle after that Set sees this request.
		// Otherwise pick again from the new table.
		if r.table.Load() == t {
			return rt, b, setCookie
		}
		b.inFlight.Add(-1)
	}
}

// WaitIdle returns when no request is in flight to the backend at addr, or
// with the context's error. Call it after a Set that removed addr, to drain
// the replica before stopping it.
func (r *Router) WaitIdle(ctx context.Context, addr string) error {
	r.mu.Lock()
	b := r.backends[addr]
	r.mu.Unlock()
	if b == nil || b.inFlight.Load() == 0 {
		return nil
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for b.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s: %d requests in flight: %w", addr, b.inFlight.Load(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// Forget drops the stats of revisions that will never take traffic again
// (pruned by history), so Stats — and /metrics — stop reporting them. A
// revision the current table routes to is kept.
func (r *Router) Forget(revisions ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.table.Load()
	for _, rev := range revisions {
		if t.routeFor(rev) == nil {
			delete(r.revisions, rev)
		}
	}
}

// Stats returns the cumulative stats of every revision that has appeared in
// a table and was not forgotten, sorted by revision.
func (r *Router) Stats() []RevisionStats {
	r.mu.Lock()
	live := make([]*revisionStats, 0, len(r.revisions))
	for _, s := range r.revisions {
		live = append(live, s)
	}
	r.mu.Unlock()
	names := r.paths.names()
	out := make([]RevisionStats, len(live))
	for i, s := range live {
		out[i] = s.snapshot(names)
	}
	slices.SortFunc(out, func(a, b RevisionStats) int { return a.Revision - b.Revision })
	return out
}
