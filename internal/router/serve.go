package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server timeouts: how long a graceful shutdown may take before the
// remaining connections are cut, and how long a client may take to send its
// request headers.
const (
	shutdownTimeout   = 5 * time.Second
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Serve serves the router on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish for up to five seconds,
// then closes what remains, including upgraded (WebSocket) connections. It
// returns nil after a clean shutdown.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	// Requests get a context that outlives ctx, so that shutdown is
	// graceful; it is cancelled once the grace period is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var active sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			active.Add(1)
			defer active.Done()
			r.ServeHTTP(w, req)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-served:
		srv.Close()
		err = fmt.Errorf("router %s: serve: %w", r.app, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
			err = fmt.Errorf("router %s: shutdown: %w", r.app, serr)
		}
		cancel()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("router %s: serve: %w", r.app, serr))
		}
	}
	cancelBase() // ends hijacked connections, which Shutdown does not track
	active.Wait()
	r.transport.CloseIdleConnections()
	return err
}
