package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
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

// rewrite points the outgoing request at the exchange's backend. The Host
// header stays as the client sent it; X-Forwarded-For, -Host and -Proto
// describe the client (any the client sent are dropped).
func rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = ex.backend.addr
	pr.SetXForwarded()
}

// modifyResponse records the status and stamps the revision (and the
// affinity cookie) on the response.
func modifyResponse(res *http.Response) error {
	ex := exchangeOf(res.Request.Context())
	ex.status = res.StatusCode
	res.Header[RevisionHeader] = ex.route.header
	if ex.setCookie {
		res.Header["Set-Cookie"] = append(res.Header["Set-Cookie"], ex.route.setCookie...)
	}
	return nil
}

// proxyError answers 502 when the backend could not be reached or did not
// answer. A request the client abandoned is recorded as 499, not as an
// error of the revision.
func proxyError(w http.ResponseWriter, req *http.Request, err error) {
	ex := exchangeOf(req.Context())
	ex.status = http.StatusBadGateway
	if req.Context().Err() != nil {
		ex.status = 499
	}
	h := w.Header()
	h[RevisionHeader] = ex.route.header
	if ex.setCookie {
		h["Set-Cookie"] = ex.route.setCookie
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, "lastgood: revision %d: replica did not answer: %v\n", ex.route.revision, err)
}

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
