package server

import (
	"context"
	"net"
	"sync"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/router"
)

// traffic gives each app (and each preview) its own router on its own
// listener. It implements controller.Traffic.
type traffic struct {
	ctx     context.Context // owns every router's Serve
	mu      sync.Mutex
	routers map[string]*served
}

type served struct {
	r    *router.Router
	addr string
	ln   net.Listener
	// cancel and done are set once the router serves ln; a bound key that
	// does not accept yet has neither.
	cancel context.CancelFunc
	done   chan struct{}
}

func newTraffic(ctx context.Context) *traffic {
	return &traffic{ctx: ctx, routers: map[string]*served{}}
}

// Bind takes addr for key and gives it a router, but accepts nothing:
// connections complete their handshake in the kernel and wait in the
// listen backlog until Listen. A restart uses it so that clients wait for
// the first ready replica instead of getting 503.
func (t *traffic) Bind(key, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.bindLocked(key, addr)
	return err
}

func (t *traffic) Listen(key, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, err := t.bindLocked(key, addr)
	if err != nil {
		return err
	}
	if s.done == nil {
		ctx, cancel := context.WithCancel(t.ctx)
		s.cancel, s.done = cancel, make(chan struct{})
		go func() {
			defer close(s.done)
			s.r.Serve(ctx, s.ln)
		}()
	}
	return nil
}

// bindLocked returns key's entry on addr, binding it when key has none
// there yet.
func (t *traffic) bindLocked(key, addr string) (*served, error) {
	if s := t.routers[key]; s != nil {
		if s.addr == addr {
			return s, nil
		}
		t.closeLocked(key)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &served{r: router.New(key), addr: addr, ln: ln}
	t.routers[key] = s
	return s, nil
}

func (t *traffic) Close(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closeLocked(key)
}

func (t *traffic) closeLocked(key string) {
	s := t.routers[key]
	if s == nil {
		return
	}
	if s.done == nil {
		s.ln.Close() // bound only: what waits in the backlog is reset
	} else {
		s.cancel()
		<-s.done
	}
	delete(t.routers, key)
}

// wait returns when every router has stopped after the owning context
// ended.
func (t *traffic) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key := range t.routers {
		t.closeLocked(key)
	}
}

func (t *traffic) router(key string) *router.Router {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.routers[key]; s != nil {
		return s.r
	}
	return nil
}

func (t *traffic) Route(key string, ct controller.Table) {
	r := t.router(key)
	if r == nil {
		return
	}
	tab := router.Table{Routes: make([]router.Route, len(ct.Routes))}
	for i, rt := range ct.Routes {
		tab.Routes[i] = router.Route{Revision: rt.Revision, Weight: rt.Weight, Backends: rt.Backends, Holdback: rt.Holdback}
	}
	if aff := ct.Affinity; aff != nil {
		tab.Affinity = &router.Affinity{Cookie: aff.CookieName, MaxAge: aff.MaxAge.D()}
	}
	for _, m := range ct.Match {
		tab.Match = append(tab.Match, router.Match{Header: m.Header, Cookie: m.Cookie, Value: m.Value, Revision: m.Revision})
	}
	tab.Limits = routerLimits(ct.Router)
	r.Set(tab)
}

// routerLimits turns a manifest's router section into the router's
// limits; nil takes the router's defaults. A responseTimeout of 0 means
// none.
func routerLimits(m *manifest.Router) router.Limits {
	if m == nil {
		return router.Limits{}
	}
	l := router.Limits{
		ResponseTimeout: m.ResponseTimeout.D(), MaxConnections: m.MaxConnections,
		HeaderTimeout: m.HeaderTimeout.D(), BodyTimeout: m.BodyTimeout.D(),
		BodyIdleTimeout: m.BodyIdleTimeout.D(), IdleTimeout: m.IdleTimeout.D(),
	}
	if m.Routes != nil {
		l.Routes = *m.Routes
		if l.Routes == 0 {
			l.Routes = -1 // router.routes: 0 counts no route apart
		}
	}
	if l.ResponseTimeout == 0 {
		l.ResponseTimeout = -1
	}
	return l
}

func (t *traffic) WaitIdle(ctx context.Context, key, addr string) error {
	if r := t.router(key); r != nil {
		return r.WaitIdle(ctx, addr)
	}
	return nil
}

// forget drops the router counters of pruned revisions of app (and of its
// preview), so /metrics stops exporting their series.
func (t *traffic) forget(app string, revs []int) {
	for _, key := range []string{app, controller.PreviewKey(app)} {
		if r := t.router(key); r != nil {
			r.Forget(revs...)
		}
	}
}

// all returns every router, by key.
func (t *traffic) all() map[string]*router.Router {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]*router.Router, len(t.routers))
	for key, s := range t.routers {
		out[key] = s.r
	}
	return out
}

// stats returns an app's per-revision router counters.
func (t *traffic) stats(app string) []router.RevisionStats {
	if r := t.router(app); r != nil {
		return r.Stats()
	}
	return []router.RevisionStats{}
}

// samples returns an app's router counters per revision in the judge's
// terms: the signal of compare and threshold checks.
func (t *traffic) samples(app string) map[int]judge.Sample {
	out := map[int]judge.Sample{}
	for _, st := range t.stats(app) {
		s := judge.Sample{Requests: st.Requests, Errors: st.Errors, Latency: judge.Histogram(st.Latency), Status: st.Status, Codes: st.Codes}
		if len(st.Routes) > 0 {
			s.Routes = make(map[string]judge.Sample, len(st.Routes))
			for _, rs := range st.Routes {
				s.Routes[rs.Route] = judge.Sample{Requests: rs.Requests, Errors: rs.Errors, Latency: judge.Histogram(rs.Latency), Status: rs.Status, Codes: rs.Codes}
			}
		}
		for _, b := range st.Sessions {
			s.Sessions = append(s.Sessions, judge.Sample{Requests: b.Requests, Errors: b.Errors, Status: b.Status})
		}
		out[st.Revision] = s
	}
	return out
}
