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
// proxy (an aborted response body) is still counted, as a failure.
func (ex *exchange) finish(start time.Time) {
	status := ex.status
	if status == 0 {
		status = 502
	}
	ex.route.stats.record(status, !ex.completed, time.Since(start))
	ex.route.stats.inFlight.Add(-1)
	ex.backend.inFlight.Add(-1)
}
