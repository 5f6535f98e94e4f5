package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server timeouts: how long a graceful shutdown may take before the
// remaining connections are cut, how long a client may take to send its
// request headers, and how long an idle keep-alive connection is kept.
const (
	shutdownTimeout   = 5 * time.Second
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Serve serves the router on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish for up to five seconds,
// then closes what remains, including upgraded (WebSocket) connections. It
// returns nil after a clean shutdown, and only once every goroutine it
// started has ended.
//
// Plain HTTP/1.1 requests (no body, or a Content-Length body) take the fast
// path: the connection's goroutine parses them itself and forwards them on
// pooled backend connections. At the first request that is anything else
// (HTTP/1.0, HTTP/2, an upgrade, Expect, a chunked upload, ...), the whole
// connection goes to an internal net/http server running ServeHTTP, and
// stays there.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	// Requests get a context that outlives ctx, so that shutdown is
	// graceful; it is cancelled once the grace period is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	s := r.newServer(base, ln.Addr())
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Serve(s.hatch) }()
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
	err = errors.Join(err, s.shutdown(cancelBase))
	if herr := <-httpDone; !errors.Is(herr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("router %s: serve: %w", r.app, herr))
	}
	return err
}

// server is one run of Serve.
type server struct {
	r      *Router
	base   context.Context
	hatch  *handoff
	http   *http.Server
	active sync.WaitGroup // net/http handlers running

	closing   atomic.Bool    // shutting down: no new requests
	conns     sync.WaitGroup // fast-path connection goroutines
	sweeper   sync.WaitGroup // the client watches' sweeper
	sweepStop chan struct{}
	mu        sync.Mutex
	live      map[*clientConn]struct{}
}

func (r *Router) newServer(base context.Context, addr net.Addr) *server {
	s := &server{r: r, base: base, hatch: newHandoff(addr), live: map[*clientConn]struct{}{}, sweepStop: make(chan struct{})}
	s.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			s.active.Add(1)
			defer s.active.Done()
			r.ServeHTTP(w, req)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
	}
	return s
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
	c := s.newClientConn(conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		conn.Close()
		return
	}
	s.live[c] = struct{}{}
	s.conns.Add(1)
	go c.serve()
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
	s.mu.Unlock()
	fastDone := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(s.sweepStop)
		s.sweeper.Wait()
		close(fastDone)
	}()

	var err error
	if serr := s.http.Shutdown(sctx); serr != nil {
		s.http.Close()
		err = fmt.Errorf("router %s: shutdown: %w", s.r.app, serr)
	}
	select {
	case <-fastDone:
	case <-sctx.Done():
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
	cancelBase() // ends hijacked connections, which Shutdown does not track
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
