package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// errResponseTimeout: the backend did not start its response within the
// app's response timeout.
var errResponseTimeout = errors.New("response timeout")

// max1xx is how many informational responses a request may get, as
// net/http's Transport allows.
const max1xx = 5

// serveRequest forwards the parsed request to a backend of the revision
// picked for it and relays the response. It reports whether the connection
// can carry another request.
func (c *clientConn) serveRequest() bool {
	start := time.Now()
	c.gone.Store(false)
	c.timedOut.Store(false)
	c.bodyTimedOut = false
	c.interrupted.Store(false)
	c.headDue.Store(0)
	c.bodyUnread = c.req.contentLength
	rt, b, setCookie := c.r.pick(&c.req)
	if rt == nil {
		return c.answer(503, "", "", c.r.noRoute)
	}
	ex := &c.ex
	*ex = exchange{route: rt, backend: b, setCookie: setCookie, slot: c.r.paths.slot(c.req.target), session: c.r.sessionOf(&c.req, rt, setCookie), start: start}
	rt.stats.inFlight.Add(1)
	defer ex.finish()
	return c.forward(ex, start)
}

// forward runs the exchange with the backend.
func (c *clientConn) forward(ex *exchange, now time.Time) bool {
	bc, err := c.connect(ex, now)
	if err != nil {
		return c.failed(ex, fmt.Errorf("connect: %w", err))
	}
	c.send(ex, bc, now)
	nothingRead, err := c.readResponse(bc)
	if err != nil && nothingRead && bc.reused && !c.uploading && c.req.replayable() && !c.gone.Load() && !c.timedOut.Load() {
		// An idle connection the backend had closed: send again on a new
		// one, as net/http's Transport does.
		c.watch.disarm()
		c.releaseBackend(ex, bc, false)
		if bc, err = dialBackend(c.s.base, ex.backend.addr); err != nil {
			return c.failed(ex, fmt.Errorf("connect: %w", err))
		}
		c.send(ex, bc, time.Now())
		nothingRead, err = c.readResponse(bc)
	}
	if err != nil {
		c.watch.disarm()
		ex.sent = c.endUpload(bc)
		c.releaseBackend(ex, bc, false)
		return c.failed(ex, describeResponseError(err, nothingRead))
	}
	return c.relayResponse(ex, bc)
}

// describeResponseError says what went wrong reading a response head.
func describeResponseError(err error, nothingRead bool) error {
	switch {
	case errors.Is(err, io.EOF) && nothingRead:
		return errors.New("the replica closed the connection without answering")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the replica closed the connection in the middle of its response head")
	case errors.Is(err, errHeadTooLarge):
		return fmt.Errorf("response head larger than %d bytes", maxHeadBytes)
	}
	return err
}

// connect takes an idle connection to the exchange's backend or dials one.
// If dialing fails it tries once more on another backend of the revision,
// moving the request (and its in-flight count) there.
func (c *clientConn) connect(ex *exchange, now time.Time) (*backendConn, error) {
	if bc := ex.backend.idle.get(now); bc != nil {
		return bc, nil
	}
	bc, err := dialBackend(c.s.base, ex.backend.addr)
	if err == nil {
		return bc, nil
	}
	alt := ex.route.alternative(ex.backend)
	if alt == nil || c.s.base.Err() != nil {
		return nil, err
	}
	alt.inFlight.Add(1)
	ex.backend.inFlight.Add(-1)
	ex.backend = alt
	if bc := alt.idle.get(now); bc != nil {
		return bc, nil
	}
	return dialBackend(c.s.base, alt.addr)
}

// send writes the request head to bc and starts the body's upload, or, for
// a request without a body, starts watching the client and the response
// timeout.
func (c *clientConn) send(ex *exchange, bc *backendConn, now time.Time) {
	c.setBackend(bc.conn)
	c.req.writeForwarded(bc.bw, c.clientIP)
	lim := ex.route.limits
	if n := c.bodyUnread; n > 0 {
		// The body is read under its own deadlines (see Read).
		c.bodyEnd = now.Add(lim.BodyTimeout)
		c.bodyIdle = lim.BodyIdleTimeout
		c.bodyDeadlines = true
		c.uploading = true
		go c.upload(bc, n, lim.ResponseTimeout)
		return
	}
	bc.bw.Flush() // a failure shows as the response's
	if lim.ResponseTimeout > 0 {
		c.headDue.Store(now.Add(lim.ResponseTimeout).UnixNano())
	}
	c.watch.arm(now)
}

// upload copies the request body to the backend, then starts the response
// timeout unless the response has begun. If the client fails, the backend
// connection is closed so that the response read ends too.
func (c *clientConn) upload(bc *backendConn, n int64, timeout time.Duration) {
	rl := relay{dst: bc.bw, src: c.br, buffers: c.r.buffers}
	err := rl.copyN(n)
	if err == nil {
		if ferr := bc.bw.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	if err == nil && timeout > 0 {
		c.headDue.CompareAndSwap(0, time.Now().Add(timeout).UnixNano())
	}
	if re, ok := err.(*readError); ok {
		if isTimeout(re.err) && !c.interrupted.Load() {
			c.bodyTimedOut = true
		} else {
			c.gone.Store(true)
		}
		c.abortBackend()
	}
	c.uploaded <- err
}

// endUpload waits for the upload, if any, to end. A backend may answer
// before the upload goroutine has written a body it never reads, so the
// upload gets uploadGrace to finish; one still running after that will not
// finish (the backend stopped reading): both connections are closed to end
// it. It reports whether the whole body was sent.
func (c *clientConn) endUpload(bc *backendConn) bool {
	if !c.uploading {
		return true
	}
	c.uploading = false
	var err error
	select {
	case err = <-c.uploaded:
		return c.uploadEnded(err)
	default:
	}
	grace := time.NewTimer(uploadGrace)
	defer grace.Stop()
	select {
	case err = <-c.uploaded:
	case <-grace.C:
		bc.conn.Close()
		c.interrupted.Store(true)
		c.conn.SetReadDeadline(aLongTimeAgo)
		err = <-c.uploaded
		if err == nil {
			err = errors.New("upload interrupted")
		}
	}
	return c.uploadEnded(err)
}

// uploadGrace is how long a finished response waits for its upload.
const uploadGrace = 250 * time.Millisecond

func (c *clientConn) uploadEnded(err error) bool {
	c.bodyDeadlines = false
	c.readDeadline = time.Time{} // the upload moved it; awaitRequest sets it again
	if err != nil {
		c.bodyUnread = -1
		return false
	}
	c.bodyUnread = 0
	return true
}

// readResponse reads the backend's final response head into c.resp,
// relaying any interim (1xx) responses before it. nothingRead reports that
// the backend sent not a byte.
func (c *clientConn) readResponse(bc *backendConn) (nothingRead bool, err error) {
	for interim := 0; ; interim++ {
		head, err := readHead(bc.br, c.respHead[:0])
		if cap(head) <= keepHeadBuffer {
			c.respHead = head[:0]
		}
		if interim == 0 && c.headDue.Swap(-1) == 0 && c.timedOut.Load() || err != nil && c.timedOut.Load() {
			return false, errResponseTimeout
		}
		if err != nil {
			switch {
			case errors.Is(err, errNotSimple):
				err = fmt.Errorf("%w: the response starts with an empty line", errMalformed)
			case len(head) >= 5 && string(head[:5]) != "HTTP/" || len(head) > 0 && len(head) < 5 && !bytes.HasPrefix([]byte("HTTP/"), head):
				line, _, _ := bytes.Cut(head, []byte("\n"))
				err = fmt.Errorf("%w: no HTTP/1.x status line (an HTTP/0.9 backend?): %.40q", errMalformed, line)
			}
			return interim == 0 && len(head) == 0, err
		}
		if err := parseResponseHead(head, &c.resp); err != nil {
			return false, err
		}
		switch {
		case c.resp.status >= 200:
			return false, nil
		case c.resp.status == 101:
			return false, fmt.Errorf("%w: 101 to a request without Upgrade", errMalformed)
		case interim >= max1xx:
			return false, fmt.Errorf("%w: more than %d informational responses", errRefused, max1xx)
		}
		c.resp.writeRelayed(c.bw, c.req.method, "", "", false)
		if err := c.bw.Flush(); err != nil {
			return false, &writeError{err}
		}
	}
}

// relayResponse writes the response head and relays the body.
func (c *clientConn) relayResponse(ex *exchange, bc *backendConn) bool {
	res, method := &c.resp, c.req.method
	closing := c.req.close || c.s.closing.Load()
	ex.status = res.status
	setCookie := ""
	if ex.setCookie {
		setCookie = ex.cookie()[0]
	}
	res.writeRelayed(c.bw, method, ex.route.header[0], setCookie, closing)
	rl := relay{dst: c.bw, src: bc.br, buffers: c.r.buffers}
	var err error
	switch {
	case res.bodyless(method):
	case res.chunked:
		err = rl.copyChunked()
	case res.contentLength >= 0:
		err = rl.copyN(res.contentLength)
	default:
		err = rl.copyToEOFChunked()
	}
	c.watch.disarm()
	ex.sent = c.endUpload(bc)
	c.releaseBackend(ex, bc, err == nil && ex.sent && !res.close && !res.closeDelimited(method))
	ex.completed = err == nil
	if err != nil {
		var we *writeError
		if errors.As(err, &we) || c.gone.Load() {
			err = fmt.Errorf("the client left during the response: %w", err)
		} else {
			err = fmt.Errorf("response body: %w", err)
		}
		ex.proxyError(string(method), c.req.target, ex.status, err)
	}
	return err == nil && !closing && c.discardBody()
}

// releaseBackend returns bc to its backend's pool, or closes it. From then
// on the response timeout cannot fire for this request.
func (c *clientConn) releaseBackend(ex *exchange, bc *backendConn, reusable bool) {
	c.mu.Lock()
	c.backend = nil
	c.headDue.Store(-1)
	killed := c.killed
	c.mu.Unlock()
	if reusable && !killed && !c.gone.Load() {
		ex.backend.idle.put(bc, time.Now())
		return
	}
	bc.conn.Close()
}

// checkResponseTimeout closes the backend connection of a request whose
// response has not started by its deadline; the sweeper calls it.
func (c *clientConn) checkResponseTimeout(now int64) {
	if d := c.headDue.Load(); d <= 0 || now < d {
		return
	}
	c.mu.Lock()
	if d := c.headDue.Load(); d > 0 && now >= d && c.headDue.CompareAndSwap(d, 0) {
		c.timedOut.Store(true)
		if c.backend != nil {
			c.backend.Close()
		}
	}
	c.mu.Unlock()
}

// failed answers a request that got no response: 504 when the response
// timeout ended it, 408 when the client's body was too slow, 502 with the
// revision otherwise, or nothing (counted as 499) if the client left or
// the shutdown cut it.
func (c *clientConn) failed(ex *exchange, err error) bool {
	ex.completed = true
	c.mu.Lock()
	killed := c.killed
	c.mu.Unlock()
	method, target := string(c.req.method), c.req.target
	setCookie := ""
	if ex.setCookie {
		setCookie = ex.cookie()[0]
	}
	switch {
	case killed:
		ex.status, ex.sent = 499, false // the shutdown's doing, not the revision's
		return false
	case c.timedOut.Load():
		ex.status = 504
		ex.proxyError(method, target, 504, fmt.Errorf("no response within %s (router.responseTimeout)", ex.route.limits.ResponseTimeout))
		body := fmt.Appendf(nil, "lastgood: revision %d: replica did not answer within %s\n", ex.route.revision, ex.route.limits.ResponseTimeout)
		return c.answer(504, ex.route.header[0], setCookie, body)
	case c.bodyTimedOut:
		ex.status, ex.sent = 408, false
		c.answer(408, "", "", []byte("lastgood: the request body was not sent in time\n"))
		return false
	case c.gone.Load():
		ex.status = 499
		if ex.sent {
			ex.proxyError(method, target, 499, fmt.Errorf("the client left after waiting %s for the response", time.Since(ex.start).Round(time.Millisecond)))
		}
		return false
	}
	ex.status = 502
	ex.proxyError(method, target, 502, err)
	body := fmt.Appendf(nil, "lastgood: revision %d: replica did not answer: %v\n", ex.route.revision, err)
	return c.answer(502, ex.route.header[0], setCookie, body)
}
