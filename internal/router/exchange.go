package router

import (
	"context"
	"time"
)

// exchange is the router's state for one proxied request. It is also the
// request's context (wrapping the incoming one), so the proxy's hooks and
// the transport find it without an extra allocation.
type exchange struct {
	context.Context
	route     *route
	backend   *backend // changes if the request is retried on another backend
	setCookie bool     // add the affinity cookie to the response
	status    int      // response status, set by the proxy's hooks
	completed bool     // the proxy returned normally (no aborted body copy)
	// sent reports that the request reached the backend whole: a client
	// that leaves after that has waited on the revision, and its 499
	// counts as the revision's failure.
	sent    bool
	slot    int // the request's route slot (see paths)
	session int // the request's session bucket, -1 for none (see sessions.go)
	start   time.Time
	hatch   *hatchState // the net/http path's; nil on the fast path
}

type exchangeKey struct{}

// Value returns the exchange itself for exchangeKey and defers to the
// wrapped context otherwise.
func (ex *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return ex
	}
	return ex.Context.Value(key)
}

// exchangeOf returns the exchange that ctx carries, or nil.
func exchangeOf(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// finish accounts for the request. It runs deferred, so a panicking
// proxy (an aborted response body) is still counted, as a failure. A 499
// counts as a failure when the request had reached the backend whole.
func (ex *exchange) finish() {
	status := ex.status
	if status == 0 {
		status = 502
	}
	failed := !ex.completed || status == 499 && ex.sent
	ex.route.stats.recordAt(ex.slot, status, failed, time.Since(ex.start))
	ex.route.stats.recordSession(ex.session, status, failed)
	ex.route.stats.inFlight.Add(-1)
	ex.backend.inFlight.Add(-1)
}

// proxyError keeps a sample of a request the router failed.
func (ex *exchange) proxyError(method string, target []byte, status int, err error) {
	ex.route.stats.proxyError(ProxyError{Time: time.Now(), Request: requestLine(method, target), Status: status, Error: err.Error()})
}
