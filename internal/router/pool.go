package router

import (
	"bufio"
	"context"
	"net"
	"sync"
	"syscall"
	"time"
)

// Backend connection pool tuning for the fast path.
const (
	// maxIdlePerBackend bounds the idle keep-alive connections kept to one
	// backend (as maxIdleConnsPerHost does for the net/http path).
	maxIdlePerBackend = 256
	// idleFresh is how long an idle connection is trusted: nobody reads an
	// idle connection, so one idle for longer may have been closed by the
	// backend (Node.js closes after 5 s) and is replaced by a new dial.
	idleFresh = time.Second
	// ioBufferSize is the size of every bufio reader and writer.
	ioBufferSize = 4 << 10
)

// backendConn is one connection to a backend, with its buffers.
type backendConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool            // it has carried a request before
	raw       syscall.RawConn // for quiet; nil if the connection has none
	peek      func(fd uintptr) bool
	peekBuf   [1]byte
	peekErr   error
}

// quiet reports whether an idle connection has nothing to read: the
// backend has neither closed it nor sent bytes nobody asked for (which
// would be read as the next request's response). It peeks without
// waiting, as net/http's Transport, whose idle connections are always
// being read, would notice.
func (bc *backendConn) quiet() bool {
	if bc.raw == nil {
		return true
	}
	bc.raw.Read(bc.peek)
	return bc.peekErr == syscall.EAGAIN || bc.peekErr == syscall.EWOULDBLOCK
}

// peekOnce peeks at one byte of the socket without waiting; the result is
// in peekErr. It is made once per connection, so that quiet allocates
// nothing.
func (bc *backendConn) peekOnce(fd uintptr) bool {
	_, _, bc.peekErr = syscall.Recvfrom(int(fd), bc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}

// connPool holds a backend's idle connections, most recently used last.
type connPool struct {
	mu     sync.Mutex
	idle   []*backendConn
	closed bool // the backend left the router: no more idle connections
}

// get returns the most recently used idle connection that is quiet, or
// nil. Connections idle for longer than idleFresh are closed instead (and
// with them every one below, which are older).
func (p *connPool) get(now time.Time) *backendConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		bc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(bc.idleSince) > idleFresh {
			stale := append(p.idle, bc)
			p.idle = nil
			p.mu.Unlock()
			for _, s := range stale {
				s.conn.Close()
			}
			return nil
		}
		p.mu.Unlock()
		if bc.quiet() {
			bc.reused = true
			return bc
		}
		bc.conn.Close()
	}
}

// put keeps bc for reuse, or closes it if the pool is full or closed, or
// if the backend sent more than the response (net/http's Transport closes
// such a connection too).
func (p *connPool) put(bc *backendConn, now time.Time) {
	if bc.br.Buffered() > 0 {
		bc.conn.Close()
		return
	}
	bc.idleSince = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerBackend {
		p.mu.Unlock()
		bc.conn.Close()
		return
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

// closeIdle closes the idle connections. With forever, the pool keeps no
// connection from then on.
func (p *connPool) closeIdle(forever bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = p.closed || forever
	p.mu.Unlock()
	for _, bc := range idle {
		bc.conn.Close()
	}
}

// dialBackend opens a new connection to addr. A failure is a *dialError:
// nothing was sent.
func dialBackend(ctx context.Context, addr string) (*backendConn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	bc := &backendConn{conn: c, br: bufio.NewReaderSize(c, ioBufferSize), bw: bufio.NewWriterSize(c, ioBufferSize)}
	if sc, ok := c.(syscall.Conn); ok {
		bc.raw, _ = sc.SyscallConn()
		bc.peek = bc.peekOnce
	}
	return bc, nil
}
