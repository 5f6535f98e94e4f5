package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// shutdownTimeout is how long a graceful shutdown may take before the
// remaining connections are cut. The other timeouts are the app's Limits.
const shutdownTimeout = 5 * time.Second

// Serve serves the router on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish for up to five seconds,
// then closes what remains, including upgraded (WebSocket) connections. It
// returns nil after a clean shutdown, and only once every goroutine it
// started has ended.
//
// Plain HTTP/1.1 requests (no body, or a Content-Length body) take the fast
// path: the connection's goroutine parses them itself and forwards them on
// pooled backend connections. At the first request that is anything else
// (HTTP/1.0, HTTP/2, an upgrade, Expect, a chunked upload, unusual framing
// or targets, ...), the whole connection goes to an internal net/http
// server running ServeHTTP, and stays there.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	// Requests get a context that outlives ctx, so that shutdown is
	// graceful; it is cancelled once the grace period is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	r.cut.Store(false)
	s := r.newServer(base, ln.Addr())
	r.mu.Lock()
	r.serving = s
	s.renewHatch(r.table.Load().limits)
	r.mu.Unlock()
	s.sweeper.Go(func() { s.sweep(s.sweepStop) })
	accepted := make(chan error, 1)
	go func() { accepted <- s.accept(ln) }()

	var err error
	select {
	case aerr := <-accepted:
		err = fmt.Errorf("router %s: serve: %w", r.app, aerr)
	case <-ctx.Done():
		ln.Close()
		<-accepted
	}
	r.mu.Lock()
	r.serving = nil
	r.mu.Unlock()
	return errors.Join(err, s.shutdown(cancelBase))
}

// server is one run of Serve.
type server struct {
	r     *Router
	base  context.Context
	addr  net.Addr
	hatch atomic.Pointer[hatch] // the net/http server connections go to
	// retired are hatches replaced when the limits changed, finishing
	// their connections.
	retired sync.WaitGroup
	active  sync.WaitGroup // net/http handlers running

	closing   atomic.Bool    // shutting down: no new requests
	conns     sync.WaitGroup // fast-path connection goroutines
	open      atomic.Int64   // client connections open, on either path
	sweeper   sync.WaitGroup // the client watches' sweeper
	sweepStop chan struct{}
	mu        sync.Mutex // guards live, and hatch swaps
	live      map[*clientConn]struct{}
}

// hatch is the router's internal net/http server, fed by the fast path
// with the connections it leaves to net/http. Its read timeouts are the
// limits it was made with; when they change, a new hatch takes the new
// connections and the old one finishes its own (see renewHatch).
type hatch struct {
	handoff *handoff
	http    *http.Server
	limits  *limits
	done    chan error // Serve's result
}

func (r *Router) newServer(base context.Context, addr net.Addr) *server {
	return &server{r: r, base: base, addr: addr, live: map[*clientConn]struct{}{}, sweepStop: make(chan struct{})}
}

// renewHatch starts a hatch with the read timeouts of lim if the current
// one has others, and retires the current one. r.mu is held.
func (s *server) renewHatch(lim *limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.hatch.Load()
	if s.closing.Load() || old != nil && old.limits.HeaderTimeout == lim.HeaderTimeout && old.limits.IdleTimeout == lim.IdleTimeout {
		return
	}
	h := &hatch{handoff: newHandoff(s.addr), limits: lim, done: make(chan error, 1)}
	h.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			s.active.Add(1)
			defer s.active.Done()
			s.r.ServeHTTP(w, req)
		}),
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ReadHeaderTimeout: lim.HeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
	}
	go func() { h.done <- h.http.Serve(h.handoff) }()
	s.hatch.Store(h)
	if old == nil {
		return
	}
	old.handoff.Close()
	s.retired.Go(func() {
		<-old.done
		// Shutdown closes the idle connections and waits for the
		// active ones; the end of the base context cuts them.
		if old.http.Shutdown(s.base) != nil {
			old.http.Close()
		}
	})
}

// give hands a connection to the current hatch. It reports false, leaving
// c to the caller, when the router is shutting down.
func (s *server) give(c net.Conn) bool {
	for {
		h := s.hatch.Load()
		if h.handoff.give(c) {
			return true
		}
		if s.hatch.Load() == h {
			return false // closed by the shutdown, not replaced
		}
	}
}

// accept starts a goroutine for each connection until the listener fails.
// Temporary failures (too many open files) are retried after a pause, as
// net/http does.
func (s *server) accept(ln net.Listener) error {
	var pause time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		s.start(conn)
	}
}

func (s *server) start(conn net.Conn) {
	if n := s.open.Add(1); n > int64(s.r.table.Load().limits.maxConns) {
		s.open.Add(-1)
		s.refuse(conn)
		return
	}
	c := s.newClientConn(conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		conn.Close()
		s.open.Add(-1)
		return
	}
	s.live[c] = struct{}{}
	s.conns.Add(1)
	go c.serve()
}

// refuse answers a connection beyond the app's cap with 503 and closes
// it, without reading it.
func (s *server) refuse(conn net.Conn) {
	s.r.refused.Add(1)
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write(s.r.tooMany)
	conn.Close()
}

// forget is called by a connection's goroutine as it ends.
func (s *server) forget(c *clientConn) {
	s.mu.Lock()
	delete(s.live, c)
	s.mu.Unlock()
	s.conns.Done()
}

// shutdown ends both paths gracefully within shutdownTimeout, then closes
// what remains, and waits for every connection goroutine and handler.
func (s *server) shutdown(cancelBase context.CancelFunc) error {
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.live {
		c.interruptIfIdle()
	}
	h := s.hatch.Load()
	s.mu.Unlock()
	fastDone := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(s.sweepStop)
		s.sweeper.Wait()
		close(fastDone)
	}()

	var err error
	if serr := h.http.Shutdown(sctx); serr != nil {
		s.r.cut.Store(true)
		h.http.Close()
		err = fmt.Errorf("router %s: shutdown: %w", s.r.app, serr)
	}
	select {
	case <-fastDone:
	case <-sctx.Done():
		s.r.cut.Store(true)
		s.mu.Lock()
		for c := range s.live {
			c.kill()
		}
		s.mu.Unlock()
		<-fastDone
		if err == nil {
			err = fmt.Errorf("router %s: shutdown: %w", s.r.app, sctx.Err())
		}
	}
	if herr := <-h.done; !errors.Is(herr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("router %s: serve: %w", s.r.app, herr))
	}
	s.r.cut.Store(true)
	cancelBase() // ends hijacked connections, which Shutdown does not track
	s.retired.Wait()
	s.active.Wait()
	s.r.closeIdleBackends()
	s.r.transport.CloseIdleConnections()
	return err
}

// closeIdleBackends closes the fast path's idle backend connections.
func (r *Router) closeIdleBackends() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.backends {
		b.idle.closeIdle(false)
	}
}

// tooManyResponse is the answer to a connection beyond the cap.
func tooManyResponse(app string) []byte {
	body := "lastgood: too many connections to " + app + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}
