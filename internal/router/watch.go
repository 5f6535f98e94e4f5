package router

import (
	"errors"
	"os"
	"time"
)

// watchDelay is how long a request waits for its response before the
// router starts watching whether the client is still there. Fast requests
// never pay for the watch.
const watchDelay = 100 * time.Millisecond

// clientWatch notices a client that leaves while its request is in the
// backend's hands, so that the backend connection is closed (the backend
// sees the request cancelled) and the request counts as 499, as net/http's
// background read does for the ServeHTTP path. It reads one byte of the
// client connection in a goroutine started by a timer; a byte that arrives
// (a pipelined request) is kept for clientConn.Read.
type clientWatch struct {
	c     *clientConn
	timer *time.Timer
	done  chan struct{} // the timer's goroutine has ended
	armed bool          // the timer was started for this request

	pending bool // peek holds a byte read from the client
	peek    [1]byte

	// Guarded by c.mu:
	stop     bool // the request is over: do not start reading
	watching bool // a read is in progress
}

func (w *clientWatch) init(c *clientConn) {
	w.c = c
	w.done = make(chan struct{}, 1)
	w.timer = time.AfterFunc(time.Hour, w.run)
	w.timer.Stop()
}

// arm starts the timer for a request without a body whose client has sent
// nothing more.
func (w *clientWatch) arm() {
	if w.c.br.Buffered() > 0 || w.pending {
		return
	}
	w.armed = true
	w.timer.Reset(watchDelay)
}

// disarm ends the watch for the current request, waiting for its read to
// stop.
func (w *clientWatch) disarm() {
	if !w.armed {
		return
	}
	w.armed = false
	if w.timer.Stop() {
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
}

// run is the timer's goroutine.
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
