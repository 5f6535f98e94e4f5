package server

import (
	"context"
	"net"
	"sync"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/judge"
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
	r      *router.Router
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

func newTraffic(ctx context.Context) *traffic {
	return &traffic{ctx: ctx, routers: map[string]*served{}}
}

func (t *traffic) Listen(key, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.routers[key]; s != nil {
		if s.addr == addr {
			return nil
		}
		t.closeLocked(key)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(t.ctx)
	s := &served{r: router.New(key), addr: addr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.r.Serve(ctx, ln)
	}()
	t.routers[key] = s
	return nil
}

func (t *traffic) Close(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closeLocked(key)
}

func (t *traffic) closeLocked(key string) {
	if s := t.routers[key]; s != nil {
		s.cancel()
		<-s.done
		delete(t.routers, key)
	}
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
	r.Set(tab)
}

func (t *traffic) WaitIdle(ctx context.Context, key, addr string) error {
	if r := t.router(key); r != nil {
		return r.WaitIdle(ctx, addr)
	}
	return nil
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
		out[st.Revision] = judge.Sample{Requests: st.Requests, Errors: st.Errors, Latency: judge.Histogram(st.Latency)}
	}
	return out
}
