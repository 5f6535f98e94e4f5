package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// RevisionStats is what the router has seen of one revision since it first
// appeared in a table. Counters are cumulative; subtract two snapshots for a
// window.
type RevisionStats struct {
	Revision int
	// Requests counts completed requests (including failed ones).
	Requests uint64
	// Errors counts the requests the revision failed: 5xx responses
	// (including the router's own 502s and 504s), responses whose body
	// could not be relayed to the end, and requests whose client gave up
	// after the request had reached the replica whole (499s).
	Errors uint64
	// Status counts responses by class: index = status/100, [0] unused.
	// Requests abandoned by the client count as 499.
	Status   [6]uint64
	InFlight int64
	Latency  Histogram
	// ProxyErrors counts the requests that the router failed itself (see
	// ProxyError), a subset of Errors.
	ProxyErrors uint64
	// RecentProxyErrors are the last of them (at most MaxRecentProxyErrors),
	// oldest first.
	RecentProxyErrors []ProxyError `json:",omitempty"`
}

// MaxRecentProxyErrors is how many proxy errors a revision's stats keep.
const MaxRecentProxyErrors = 16

// ProxyError is one request that the router failed itself rather than
// relaying the replica's answer: no connection to a replica, a response it
// could not read or refused to relay, no response within the response
// timeout, a body cut short, or a client that gave up waiting.
type ProxyError struct {
	Time time.Time `json:"time"`
	// Request is the method and path, without the query.
	Request string `json:"request"`
	// Status is what the router recorded: 502, 504, 499 (the client left),
	// or the replica's status when its body was cut short.
	Status int    `json:"status"`
	Error  string `json:"error"`
}

// revisionStats is the live form of RevisionStats. One exists per revision
// for the router's lifetime, so counts survive table swaps. The counters
// are lock-free; the rare proxy error takes a lock.
type revisionStats struct {
	revision int
	requests atomic.Uint64
	errors   atomic.Uint64
	status   [6]atomic.Uint64
	inFlight atomic.Int64
	latency  latencyHistogram

	proxyErrors atomic.Uint64
	mu          sync.Mutex
	recent      [MaxRecentProxyErrors]ProxyError // a ring; next is the oldest once full
	next        int
}

// record accounts for one finished request. failed marks a failure that the
// status does not show (the response body was cut short, the client gave
// up waiting).
func (s *revisionStats) record(status int, failed bool, d time.Duration) {
	s.requests.Add(1)
	if class := status / 100; class >= 1 && class < len(s.status) {
		s.status[class].Add(1)
	}
	if status >= 500 || failed {
		s.errors.Add(1)
	}
	s.latency.observe(d)
}

// proxyError keeps e among the recent proxy errors.
func (s *revisionStats) proxyError(e ProxyError) {
	s.proxyErrors.Add(1)
	s.mu.Lock()
	s.recent[s.next%MaxRecentProxyErrors] = e
	s.next++
	s.mu.Unlock()
}

func (s *revisionStats) snapshot() RevisionStats {
	out := RevisionStats{
		Revision:    s.revision,
		Requests:    s.requests.Load(),
		Errors:      s.errors.Load(),
		InFlight:    s.inFlight.Load(),
		Latency:     s.latency.snapshot(),
		ProxyErrors: s.proxyErrors.Load(),
	}
	for i := range s.status {
		out.Status[i] = s.status[i].Load()
	}
	s.mu.Lock()
	n := min(s.next, MaxRecentProxyErrors)
	if n > 0 {
		out.RecentProxyErrors = make([]ProxyError, 0, n)
		for i := s.next - n; i < s.next; i++ {
			out.RecentProxyErrors = append(out.RecentProxyErrors, s.recent[i%MaxRecentProxyErrors])
		}
	}
	s.mu.Unlock()
	return out
}

// requestLine is how a proxy error names its request: the method and the
// path without the query, which may carry secrets.
func requestLine(method string, target []byte) string {
	for i, c := range target {
		if c == '?' {
			target = target[:i]
			break
		}
	}
	const maxPath = 200
	if len(target) > maxPath {
		return method + " " + string(target[:maxPath]) + "…"
	}
	return method + " " + string(target)
}
