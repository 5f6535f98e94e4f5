package router

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// handoff is the listener of the router's internal net/http server: the
// fast path gives it the connections it leaves to net/http.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection given, or net.ErrClosed once closed.
func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept fail from then on.
func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// give hands c to the net/http server. It reports false, leaving c to the
// caller, when the listener is closed.
func (h *handoff) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

// replayConn is a client connection whose first bytes were already read by
// the fast path: reads return those first. Closing it counts it out of the
// server's open connections.
type replayConn struct {
	net.Conn
	r      io.Reader
	open   *atomic.Int64
	closed sync.Once
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *replayConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.open.Add(-1) })
	return err
}
