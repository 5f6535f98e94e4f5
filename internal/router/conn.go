package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fast path limits: request bodies up to maxDiscard are read and dropped
// when the router answers without forwarding (so the connection stays
// usable), as net/http does; larger ones close the connection. Heads read
// into buffers larger than keepHeadBuffer do not keep them.
const (
	maxDiscard     = 256 << 10
	keepHeadBuffer = 64 << 10
	deadlineSlack  = time.Second
	lingerTimeout  = 500 * time.Millisecond
	maxLinger      = 4 << 20
)

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// clientConn is the fast path's state for one client connection. One
// goroutine serves it, request after request.
type clientConn struct {
	s        *server
	r        *Router
	conn     net.Conn
	br       *bufio.Reader // reads through clientConn.Read
	bw       *bufio.Writer
	clientIP string
	head     []byte // storage of the current request head
	req      requestHead
	respHead []byte
	resp     responseHead
	ex       exchange // the current request's; not used as a context
	// bodyUnread is how much of the request body is still in br: -1 when
	// an unknown part of it was consumed.
	bodyUnread int64
	uploaded   chan error // the upload goroutine's result
	// readDeadline is the read deadline last set by this goroutine.
	readDeadline time.Time
	uploading    bool
	// While a body is uploaded, each read of it is bounded by bodyIdle
	// and by bodyEnd (see Read). interrupted stops the upload's reads.
	bodyDeadlines bool
	bodyEnd       time.Time
	bodyIdle      time.Duration
	bodyTimedOut  bool // the upload ended on a body deadline
	interrupted   atomic.Bool

	// headDue is when the current request's response must have started,
	// in Unix nanoseconds: 0 while not armed, -1 once the response began
	// or the request ended. The sweeper sets timedOut when it passes.
	headDue  atomic.Int64
	timedOut atomic.Bool

	watch clientWatch
	gone  atomic.Bool // the client left during the current request

	idle     atomic.Bool // waiting for a request
	lastPOST bool        // the last request was a POST

	mu      sync.Mutex // guards the fields below
	backend net.Conn   // the backend connection in use
	killed  bool       // the shutdown's grace period ended
}

func (s *server) newClientConn(conn net.Conn) *clientConn {
	c := &clientConn{s: s, r: s.r, conn: conn, uploaded: make(chan error, 1)}
	c.br = bufio.NewReaderSize(c, ioBufferSize)
	c.bw = bufio.NewWriterSize(conn, ioBufferSize)
	if host, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		c.clientIP = host
	}
	c.watch.init(c)
	return c
}

// Read reads the client, returning first a byte the watcher read. While a
// body is uploaded, each read waits at most bodyIdle for the next bytes,
// and never past bodyEnd.
func (c *clientConn) Read(p []byte) (int, error) {
	if c.watch.pending && len(p) > 0 {
		c.watch.pending = false
		p[0] = c.watch.peek[0]
		return 1, nil
	}
	if c.bodyDeadlines {
		if c.interrupted.Load() {
			return 0, os.ErrDeadlineExceeded
		}
		d := time.Now().Add(c.bodyIdle)
		if d.After(c.bodyEnd) {
			d = c.bodyEnd
		}
		c.conn.SetReadDeadline(d)
	}
	return c.conn.Read(p)
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// serve reads requests and serves them until the connection ends, or hands
// the connection to net/http at the first request that is not simple.
func (c *clientConn) serve() {
	handedOff, linger := false, false
	defer func() {
		if !handedOff {
			if linger {
				c.lingerClose()
			}
			c.conn.Close()
			c.s.open.Add(-1)
		}
		c.s.forget(c)
	}()
	for {
		if !c.awaitRequest() {
			return
		}
		if c.lastPOST {
			// As net/http does after a POST (RFC 9112 section 2.2's
			// tolerance of a client's stray line ending after a body).
			peek, _ := c.br.Peek(4)
			c.br.Discard(leadingCRorLF(peek))
		}
		head, err := readHead(c.br, c.head[:0])
		if cap(head) <= keepHeadBuffer {
			c.head = head[:0]
		}
		if err == nil {
			err = parseRequestHead(head, &c.req)
		}
		switch {
		case err == nil && !c.r.forceNetHTTP:
		case err == nil, errors.Is(err, errNotSimple):
			handedOff = c.handOff(head)
			return
		case errors.Is(err, errHeadTooLarge):
			c.reject(431, "Request Header Fields Too Large")
			return
		case errors.Is(err, errMalformed):
			c.reject(400, "Bad Request")
			return
		default:
			return // the client left, or was too slow to send its head
		}
		c.lastPOST = string(c.req.method) == "POST"
		keep := c.serveRequest()
		// The request was counted as it ended; net/http's path, too,
		// flushes the end of a response after its handler returns.
		if c.bw.Flush() != nil {
			return
		}
		if !keep {
			linger = true
			return
		}
	}
}

// awaitRequest waits for the first byte of the next request, as an idle
// connection that a shutdown may close. It reports false when the
// connection should end.
//
// Setting a deadline costs timer work, so the idle deadline is moved
// forward at most once per deadlineSlack, and the head's deadline is set
// only when the head is not already buffered whole.
func (c *clientConn) awaitRequest() bool {
	lim := c.r.table.Load().limits
	if c.br.Buffered() == 0 {
		now := time.Now()
		if d := c.readDeadline.Sub(now); d < lim.IdleTimeout-deadlineSlack || d > lim.IdleTimeout {
			c.setReadDeadline(now.Add(lim.IdleTimeout))
		}
		// Either this sees closing, or the shutdown sees idle and
		// interrupts the read (sync/atomic is sequentially consistent).
		c.idle.Store(true)
		if c.s.closing.Load() {
			c.idle.Store(false)
			return false
		}
		_, err := c.br.Peek(1)
		c.idle.Store(false)
		if err != nil {
			return false
		}
	}
	if buffered, _ := c.br.Peek(c.br.Buffered()); !bytes.Contains(buffered, []byte("\n\r\n")) && !bytes.Contains(buffered, []byte("\n\n")) {
		c.setReadDeadline(time.Now().Add(lim.HeaderTimeout))
	}
	return true
}

// leadingCRorLF counts the CR and LF bytes that b starts with.
func leadingCRorLF(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

// setReadDeadline sets the client connection's read deadline and notes it.
func (c *clientConn) setReadDeadline(t time.Time) {
	c.readDeadline = t
	c.conn.SetReadDeadline(t)
}

// interruptIfIdle ends the connection if it is waiting for a request.
func (c *clientConn) interruptIfIdle() {
	if c.idle.Load() {
		c.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// kill closes the connection and its backend connection at once. The
// request cut counts as abandoned (499), as on the net/http path.
func (c *clientConn) kill() {
	c.mu.Lock()
	c.killed = true
	c.gone.Store(true)
	c.conn.Close()
	if c.backend != nil {
		c.backend.Close()
	}
	c.mu.Unlock()
}

// setBackend records the backend connection in use (nil: none).
func (c *clientConn) setBackend(conn net.Conn) {
	c.mu.Lock()
	c.backend = conn
	if c.killed && conn != nil {
		conn.Close()
	}
	c.mu.Unlock()
}

// abortBackend closes the backend connection in use, if any.
func (c *clientConn) abortBackend() {
	c.mu.Lock()
	if c.backend != nil {
		c.backend.Close()
	}
	c.mu.Unlock()
}

// handOff gives the connection, with the bytes of head replayed first, to
// the router's net/http server. It reports false if that server is closed.
func (c *clientConn) handOff(head []byte) bool {
	c.setReadDeadline(time.Time{})
	c.r.handoffs.Add(1)
	return c.s.give(&replayConn{Conn: c.conn, r: io.MultiReader(bytes.NewReader(head), c.br), open: &c.s.open})
}

// reject answers an unreadable request and leaves the connection to close.
// Like net/http, it half-closes and reads what the client still sends for
// a moment before closing, so that the client gets the answer rather than
// a reset.
func (c *clientConn) reject(status int, text string) {
	c.bw.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + text +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
		strconv.Itoa(status) + " " + text)
	if c.bw.Flush() != nil {
		return
	}
	c.lingerClose()
}

// lingerClose ends the connection's sending side and reads what the client
// still sends for a moment, as net/http does before it closes, so that a
// client that pipelined more gets the last answer rather than a reset.
func (c *clientConn) lingerClose() {
	c.mu.Lock()
	killed := c.killed
	c.mu.Unlock()
	if killed {
		return
	}
	if tc, ok := c.conn.(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
		c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, c.conn, maxLinger)
	}
}

// answer writes a response of the router's own (503, 502). It reports
// whether the connection can carry another request: the request body, if
// any, must be read and dropped first.
func (c *clientConn) answer(status int, revision, setCookie string, body []byte) bool {
	keep := !c.req.close && !c.s.closing.Load() && c.discardBody()
	w := c.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(status))
	w.WriteByte(' ')
	w.WriteString(statusText(status))
	w.WriteString("\r\n")
	if revision != "" {
		w.WriteString(RevisionHeader + ": " + revision + "\r\n")
	}
	if setCookie != "" {
		w.WriteString("Set-Cookie: " + setCookie + "\r\n")
	}
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	if !keep {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	if string(c.req.method) != "HEAD" {
		w.Write(body)
	}
	return keep
}

func statusText(status int) string {
	switch status {
	case 408:
		return "Request Timeout"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "Error"
}

// discardBody reads and drops the rest of a small request body.
func (c *clientConn) discardBody() bool {
	n := c.bodyUnread
	if n == 0 {
		return true
	}
	if n < 0 || n > maxDiscard {
		return false
	}
	_, err := c.br.Discard(int(n))
	c.bodyUnread = 0
	return err == nil
}
