package router

import (
	"errors"
	"fmt"
	"time"
)

// serveRequest forwards the parsed request to a backend of the revision
// picked for it and relays the response. It reports whether the connection
// can carry another request.
func (c *clientConn) serveRequest() bool {
	start := time.Now()
	c.gone.Store(false)
	c.bodyUnread = c.req.contentLength
	rt, b, setCookie := c.r.pick(&c.req)
	if rt == nil {
		return c.answer(503, "", "", c.r.noRoute)
	}
	ex := &c.ex
	*ex = exchange{route: rt, backend: b, setCookie: setCookie}
	rt.stats.inFlight.Add(1)
	defer ex.finish(start)
	return c.forward(ex, start)
}

// forward runs the exchange with the backend.
func (c *clientConn) forward(ex *exchange, now time.Time) bool {
	bc, err := c.connect(ex, now)
	if err != nil {
		return c.failed(ex, err)
	}
	c.send(bc, now)
	nothingRead, err := c.readResponse(bc)
	if err != nil && nothingRead && bc.reused && !c.uploading && c.req.replayable() && !c.gone.Load() {
		// An idle connection the backend had closed: send again on a new
		// one, as net/http's Transport does.
		c.watch.disarm()
		c.releaseBackend(ex, bc, false)
		if bc, err = dialBackend(c.s.base, ex.backend.addr); err != nil {
			return c.failed(ex, err)
		}
		c.send(bc, now)
		_, err = c.readResponse(bc)
	}
	if err != nil {
		c.watch.disarm()
		c.endUpload(bc)
		c.releaseBackend(ex, bc, false)
		return c.failed(ex, err)
	}
	return c.relayResponse(ex, bc)
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
// a request without a body, starts watching the client.
func (c *clientConn) send(bc *backendConn, now time.Time) {
	c.setBackend(bc.conn)
	c.req.writeForwarded(bc.bw, c.clientIP)
	if n := c.bodyUnread; n > 0 {
		c.setReadDeadline(time.Time{}) // an upload may take its time
		c.uploading = true
		go c.upload(bc, n)
		return
	}
	bc.bw.Flush() // a failure shows as the response's
	c.watch.arm(now)
}

// upload copies the request body to the backend. If the client fails, the
// backend connection is closed so that the response read ends too.
func (c *clientConn) upload(bc *backendConn, n int64) {
	rl := relay{dst: bc.bw, src: c.br, buffers: c.r.buffers}
	err := rl.copyN(n)
	if err == nil {
		if ferr := bc.bw.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	if _, ok := err.(*readError); ok {
		c.gone.Store(true)
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
		c.setReadDeadline(aLongTimeAgo)
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
	for {
		head, err := readHead(bc.br, c.respHead[:0])
		if cap(head) <= keepHeadBuffer {
			c.respHead = head[:0]
		}
		if err != nil {
			if errors.Is(err, errNotSimple) {
				err = errMalformed
			}
			return len(head) == 0, err
		}
		if err := parseResponseHead(head, &c.resp); err != nil {
			return false, err
		}
		switch {
		case c.resp.status >= 200:
			return false, nil
		case c.resp.status == 101:
			return false, fmt.Errorf("%w: 101 to a request without Upgrade", errMalformed)
		}
		c.resp.writeRelayed(c.bw, "", "", false)
		if err := c.bw.Flush(); err != nil {
			return false, &writeError{err}
		}
	}
}

// relayResponse writes the response head and relays the body.
func (c *clientConn) relayResponse(ex *exchange, bc *backendConn) bool {
	res, method := &c.resp, c.req.method
	closing := c.req.close || res.closeDelimited(method) || c.s.closing.Load()
	ex.status = res.status
	setCookie := ""
	if ex.setCookie {
		setCookie = ex.route.setCookie[0]
	}
	res.writeRelayed(c.bw, ex.route.header[0], setCookie, closing)
	rl := relay{dst: c.bw, src: bc.br, buffers: c.r.buffers}
	var err error
	switch {
	case res.bodyless(method):
	case res.chunked:
		err = rl.copyChunked()
	case res.contentLength >= 0:
		err = rl.copyN(res.contentLength)
	default:
		err = rl.copyToEOF()
	}
	c.watch.disarm()
	sent := c.endUpload(bc)
	c.releaseBackend(ex, bc, err == nil && sent && !res.close && !res.closeDelimited(method))
	ex.completed = err == nil
	return err == nil && !closing && c.discardBody()
}

// releaseBackend returns bc to its backend's pool, or closes it.
func (c *clientConn) releaseBackend(ex *exchange, bc *backendConn, reusable bool) {
	c.mu.Lock()
	c.backend = nil
	killed := c.killed
	c.mu.Unlock()
	if reusable && !killed && !c.gone.Load() {
		ex.backend.idle.put(bc, time.Now())
		return
	}
	bc.conn.Close()
}

// failed answers a request that got no response: 502 with the revision, or
// nothing (counted as 499) if the client left.
func (c *clientConn) failed(ex *exchange, err error) bool {
	ex.completed = true
	c.mu.Lock()
	killed := c.killed
	c.mu.Unlock()
	if c.gone.Load() || killed {
		ex.status = 499
		return false
	}
	ex.status = 502
	setCookie := ""
	if ex.setCookie {
		setCookie = ex.route.setCookie[0]
	}
	body := fmt.Appendf(nil, "lastgood: revision %d: replica did not answer: %v\n", ex.route.revision, err)
	return c.answer(502, ex.route.header[0], setCookie, body)
}
