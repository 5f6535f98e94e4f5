package router

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// watchDelay is how long a request waits for its response before the
// router starts watching whether the client is still there. Fast requests
// never pay for the watch.
const watchDelay = 100 * time.Millisecond

// Watch states.
const (
	watchOff     int32 = iota
	watchArmed         // a request without a body waits for the backend
	watchStarted       // the sweeper started run for it
)

// clientWatch notices a client that leaves while its request is in the
// backend's hands, so that the backend connection is closed (the backend
// sees the request cancelled) and the request counts as 499, as net/http's
// background read does for the ServeHTTP path. The server's sweeper starts
// a one-byte read of the client connection for requests armed for longer
// than watchDelay; a byte that arrives (a pipelined request) is kept for
// clientConn.Read. Arming and disarming a request that ends sooner is two
// atomic operations.
type clientWatch struct {
	c     *clientConn
	state atomic.Int32
	since atomic.Int64  // when the request was armed, in Unix nanoseconds
	done  chan struct{} // run has ended

	pending bool // peek holds a byte read from the client
	peek    [1]byte

	// Guarded by c.mu:
	stop     bool // the request is over: do not start reading
	watching bool // a read is in progress
}

func (w *clientWatch) init(c *clientConn) {
	w.c = c
	w.done = make(chan struct{}, 1)
}

// arm marks a request without a body, whose client has sent nothing more,
// as one to watch if it takes long.
func (w *clientWatch) arm(now time.Time) {
	if w.c.br.Buffered() > 0 || w.pending {
		return
	}
	w.since.Store(now.UnixNano())
	w.state.Store(watchArmed)
}

// due starts the watch if the request has waited watchDelay. The sweeper
// calls it.
func (w *clientWatch) due(now time.Time) {
	if w.state.Load() == watchArmed && now.UnixNano()-w.since.Load() >= int64(watchDelay) &&
		w.state.CompareAndSwap(watchArmed, watchStarted) {
		go w.run()
	}
}

// disarm ends the watch for the current request, waiting for its read to
// stop.
func (w *clientWatch) disarm() {
	if w.state.CompareAndSwap(watchArmed, watchOff) || w.state.Load() == watchOff {
		return
	}
	c := w.c
	c.mu.Lock()
	w.stop = true
	if w.watching {
		c.conn.SetReadDeadline(aLongTimeAgo)
		c.readDeadline = aLongTimeAgo
	}
	c.mu.Unlock()
	<-w.done
	c.mu.Lock()
	w.stop = false
	c.mu.Unlock()
	w.state.Store(watchOff)
}

// run reads the client until a byte, an error, or disarm.
func (w *clientWatch) run() {
	defer func() { w.done <- struct{}{} }()
	c := w.c
	c.mu.Lock()
	if w.stop {
		c.mu.Unlock()
		return
	}
	w.watching = true
	c.mu.Unlock()
	n, err := c.conn.Read(w.peek[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	w.watching = false
	if n > 0 {
		w.pending = true
		return
	}
	// A deadline left from the request's head ends the watch, not the
	// request.
	if err != nil && !w.stop && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.gone.Store(true)
		if c.backend != nil {
			c.backend.Close()
		}
	}
}

// sweep starts the watches that are due and ends the requests past their
// response timeout, every watchDelay/2, until stop is closed.
func (s *server) sweep(stop <-chan struct{}) {
	tick := time.NewTicker(watchDelay / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			nano := time.Now().UnixNano()
			s.mu.Lock()
			for c := range s.live {
				c.watch.due(now)
				c.checkResponseTimeout(nano)
			}
			s.mu.Unlock()
		}
	}
}
