package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"sync/atomic"
	"time"
)

// Transport tuning: replicas are local and few, so keep many idle
// connections to each, and give up quickly on one that does not accept.
const (
	dialTimeout         = time.Second
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 90 * time.Second
	copyBufferSize      = 32 << 10
	pooledBuffers       = 256
)

// dialError marks a failure to connect: the request was never sent, so it
// is safe to retry on another backend.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil, // never an environment proxy: backends are local replicas
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		MaxIdleConns:          0, // no global limit; the per-host one applies
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass bodies through as the backend sent them
	}
}

func (r *Router) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      &retryTransport{base: r.transport},
		BufferPool:     r.buffers,
		ModifyResponse: modifyResponse,
		ErrorHandler:   proxyError,
		// Failures are counted in the stats; the proxy must not log per
		// request.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// hatchState is what the net/http path tracks of an exchange beyond the
// fast path's fields: the transport's goroutines report into it.
type hatchState struct {
	cancel       context.CancelCauseFunc
	cut          *atomic.Bool // the router's: a shutdown cut requests
	method, path string
	wrote        atomic.Bool // the request was written whole
	headSeen     atomic.Bool // the response started
	timedOut     atomic.Bool // the response timeout ended the request
	bodyTimedOut atomic.Bool // the client's body was too slow
	timer        atomic.Pointer[time.Timer]
	recorded     atomic.Bool // a proxy error was recorded
}

// trace reports the transport's progress: the response timeout runs from
// the request written whole to the response's first byte.
func (st *hatchState) trace(timeout time.Duration) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			st.wrote.Store(true)
			if timeout > 0 && !st.headSeen.Load() {
				st.timer.Store(time.AfterFunc(timeout, func() {
					if !st.headSeen.Load() {
						st.timedOut.Store(true)
						st.cancel(errResponseTimeout)
					}
				}))
			}
		},
		GotFirstResponseByte: func() {
			st.headSeen.Store(true)
			if t := st.timer.Load(); t != nil {
				t.Stop()
			}
		},
	}
}

// record keeps a proxy error of the exchange.
func (st *hatchState) record(ex *exchange, status int, err error) {
	st.recorded.Store(true)
	ex.proxyError(st.method, []byte(st.path), status, err)
}

// end runs as ServeHTTP returns, also when the proxy panics to abort a
// response: a failed exchange without a recorded cause gets one, and the
// timer is stopped.
func (st *hatchState) end(ex *exchange) {
	if t := st.timer.Load(); t != nil {
		t.Stop()
	}
	if !ex.completed && !st.recorded.Load() {
		st.record(ex, ex.status, errors.New("the client left during the response"))
	}
}

// rewrite points the outgoing request at the exchange's backend. The Host
// header stays as the client sent it; X-Forwarded-For, -Host and -Proto
// describe the client (any the client sent are dropped).
func rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = ex.backend.addr
	pr.SetXForwarded()
	pr.Out = pr.Out.WithContext(httptrace.WithClientTrace(pr.Out.Context(), ex.hatch.trace(ex.route.limits.ResponseTimeout)))
}

// modifyResponse records the status and stamps the revision (and the
// affinity cookie) on the response.
func modifyResponse(res *http.Response) error {
	ex := exchangeOf(res.Request.Context())
	ex.status = res.StatusCode
	res.Header[RevisionHeader] = ex.route.header
	if ex.setCookie {
		res.Header["Set-Cookie"] = append(res.Header["Set-Cookie"], ex.cookie()...)
	}
	if res.Body != nil && res.Body != http.NoBody && res.StatusCode != http.StatusSwitchingProtocols {
		res.Body = &watchedBody{ReadCloser: res.Body, ex: ex}
	}
	return nil
}

// watchedBody records why a response body could not be read to its end.
type watchedBody struct {
	io.ReadCloser
	ex *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.ex.hatch.recorded.Load() && b.ex.Err() == nil {
		b.ex.hatch.record(b.ex, b.ex.status, fmt.Errorf("response body: %w", err))
	}
	return n, err
}

// proxyError answers a request that got no response: 504 after the
// response timeout, 408 when the client's body was too slow, 502 when the
// backend could not be reached or did not answer. A request the client
// abandoned is recorded as 499; it is its revision's failure when it had
// reached the backend whole.
func proxyError(w http.ResponseWriter, req *http.Request, err error) {
	ex := exchangeOf(req.Context())
	st := ex.hatch
	h := w.Header()
	switch {
	case st.timedOut.Load():
		ex.status = http.StatusGatewayTimeout
		st.record(ex, ex.status, fmt.Errorf("no response within %s (router.responseTimeout)", ex.route.limits.ResponseTimeout))
		ex.answer(w, ex.status, fmt.Sprintf("lastgood: revision %d: replica did not answer within %s\n", ex.route.revision, ex.route.limits.ResponseTimeout))
		return
	case st.bodyTimedOut.Load():
		ex.status = http.StatusRequestTimeout
		h.Set("Connection", "close")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(ex.status)
		io.WriteString(w, "lastgood: the request body was not sent in time\n")
		return
	case ex.Context.Err() != nil:
		ex.status = 499
		ex.sent = st.wrote.Load() && !st.cut.Load()
		if ex.sent {
			st.record(ex, 499, fmt.Errorf("the client left after waiting %s for the response", time.Since(ex.start).Round(time.Millisecond)))
		}
		w.WriteHeader(http.StatusBadGateway) // nobody reads it
		return
	}
	ex.status = http.StatusBadGateway
	st.record(ex, ex.status, err)
	ex.answer(w, ex.status, fmt.Sprintf("lastgood: revision %d: replica did not answer: %v\n", ex.route.revision, err))
}

// answer writes a response of the router's own with the revision.
func (ex *exchange) answer(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h[RevisionHeader] = ex.route.header
	if ex.setCookie {
		h["Set-Cookie"] = ex.cookie()
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// deadlineBody bounds the reading of a request body on the net/http path
// as the fast path does: each read waits at most idle, and never past end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	st   *hatchState
	end  time.Time
	idle time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	d := time.Now().Add(b.idle)
	if d.After(b.end) {
		d = b.end
	}
	b.rc.SetReadDeadline(d)
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.rc.SetReadDeadline(time.Time{}) // net/http's background read follows
	case err != nil && isTimeout(err):
		b.st.bodyTimedOut.Store(true)
	}
	return n, err
}

// noSniffWriter keeps net/http's server from adding a Content-Type the
// backend did not send (it sniffs the body otherwise), so that both paths
// relay the backend's fields alike.
type noSniffWriter struct{ http.ResponseWriter }

func (w noSniffWriter) WriteHeader(code int) {
	if h := w.ResponseWriter.Header(); code >= 200 {
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w noSniffWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// retryTransport retries a request once on another backend of the same
// revision when connecting to the first one failed.
type retryTransport struct {
	base http.RoundTripper
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	var de *dialError
	if err == nil || !errors.As(err, &de) || req.Context().Err() != nil {
		return res, err
	}
	ex := exchangeOf(req.Context())
	if ex == nil {
		return nil, err
	}
	alt := ex.route.alternative(ex.backend)
	if alt == nil {
		return nil, err
	}
	// The request never left: move it, and its in-flight count, to alt.
	alt.inFlight.Add(1)
	ex.backend.inFlight.Add(-1)
	ex.backend = alt
	req.URL.Host = alt.addr
	return t.base.RoundTrip(req)
}

// bufferPool recycles the proxy's copy buffers through a channel, which,
// unlike sync.Pool of slices, allocates nothing per use.
type bufferPool struct {
	free chan []byte
	size int
}

func newBufferPool(n, size int) *bufferPool {
	return &bufferPool{free: make(chan []byte, n), size: size}
}

func (p *bufferPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, p.size)
	}
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	select {
	case p.free <- b[:p.size]:
	default:
	}
}
