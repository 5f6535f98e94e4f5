package router

import (
	"cmp"
	"slices"
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
	Status [6]uint64
	// Codes counts responses by status code (100..599), only the codes
	// seen.
	Codes    map[int]uint64 `json:",omitempty"`
	InFlight int64
	Latency  Histogram
	// Routes are the same counts per path template, the busiest first
	// (see PathTemplate); OtherRoute counts the requests of every template
	// without counters of its own.
	Routes []RouteStats `json:",omitempty"`
	// Sessions are the counts per session bucket, with session affinity
	// (see SessionBuckets); buckets without requests are left out.
	Sessions []SessionStats `json:",omitempty"`
	// ProxyErrors counts the requests that the router failed itself (see
	// ProxyError), a subset of Errors.
	ProxyErrors uint64
	// RecentProxyErrors are the last of them (at most MaxRecentProxyErrors),
	// oldest first.
	RecentProxyErrors []ProxyError `json:",omitempty"`
}

// RouteStats is what the router has seen of one revision on one path
// template, cumulatively.
type RouteStats struct {
	Route    string
	Requests uint64
	Errors   uint64 // as RevisionStats.Errors
	Status   [6]uint64
	Codes    map[int]uint64 `json:",omitempty"`
	Latency  Histogram
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
	counts
	inFlight atomic.Int64
	// sessions count requests per session bucket (sessions.go);
	// nextSession gives new sessions their buckets in turn.
	sessions    [SessionBuckets]sessionCounts
	nextSession atomic.Uint64
	// routes are the per-route counts by slot (see paths), allocated as
	// slots first take this revision's requests.
	routes atomic.Pointer[[]*counts]

	proxyErrors atomic.Uint64
	mu          sync.Mutex
	recent      [MaxRecentProxyErrors]ProxyError // a ring; next is the oldest once full
	next        int
}

// counts are the live counters of one revision, or of one revision on
// one route.
type counts struct {
	requests atomic.Uint64
	errors   atomic.Uint64
	status   [6]atomic.Uint64
	codes    [500]atomic.Uint64 // status 100..599
	latency  latencyHistogram
}

// record accounts for one finished request. failed marks a failure that the
// status does not show (the response body was cut short, the client gave
// up waiting).
func (s *counts) record(status int, failed bool, d time.Duration) {
	s.requests.Add(1)
	if class := status / 100; class >= 1 && class < len(s.status) {
		s.status[class].Add(1)
		s.codes[status-100].Add(1)
	}
	if status >= 500 || failed {
		s.errors.Add(1)
	}
	s.latency.observe(d)
}

// recordAt accounts for one finished request, on route slot slot too.
func (s *revisionStats) recordAt(slot, status int, failed bool, d time.Duration) {
	s.counts.record(status, failed, d)
	s.route(slot).record(status, failed, d)
}

// route returns the counts of route slot i, allocating them the first
// time.
func (s *revisionStats) route(i int) *counts {
	if p := s.routes.Load(); p != nil && i < len(*p) && (*p)[i] != nil {
		return (*p)[i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []*counts
	if p := s.routes.Load(); p != nil {
		cur = *p
	}
	if i < len(cur) && cur[i] != nil {
		return cur[i]
	}
	next := make([]*counts, max(len(cur), i+1))
	copy(next, cur)
	next[i] = &counts{}
	s.routes.Store(&next)
	return next[i]
}

// snapshotCodes returns the codes seen and their counts.
func (s *counts) snapshotCodes() map[int]uint64 {
	var out map[int]uint64
	for i := range s.codes {
		if n := s.codes[i].Load(); n > 0 {
			if out == nil {
				out = map[int]uint64{}
			}
			out[100+i] = n
		}
	}
	return out
}

// proxyError keeps e among the recent proxy errors.
func (s *revisionStats) proxyError(e ProxyError) {
	s.proxyErrors.Add(1)
	s.mu.Lock()
	s.recent[s.next%MaxRecentProxyErrors] = e
	s.next++
	s.mu.Unlock()
}

// snapshot returns the revision's counts; names are the route slots'
// templates.
func (s *revisionStats) snapshot(names []string) RevisionStats {
	out := RevisionStats{
		Revision:    s.revision,
		Requests:    s.requests.Load(),
		Errors:      s.errors.Load(),
		Codes:       s.snapshotCodes(),
		InFlight:    s.inFlight.Load(),
		Latency:     s.latency.snapshot(),
		ProxyErrors: s.proxyErrors.Load(),
		Sessions:    s.snapshotSessions(),
	}
	for i := range s.status {
		out.Status[i] = s.status[i].Load()
	}
	if p := s.routes.Load(); p != nil {
		for i, c := range *p {
			if c == nil || i >= len(names) {
				continue
			}
			rs := RouteStats{Route: names[i], Requests: c.requests.Load(), Errors: c.errors.Load(), Codes: c.snapshotCodes(), Latency: c.latency.snapshot()}
			for k := range c.status {
				rs.Status[k] = c.status[k].Load()
			}
			out.Routes = append(out.Routes, rs)
		}
		slices.SortStableFunc(out.Routes, func(a, b RouteStats) int { return cmp.Compare(b.Requests, a.Requests) })
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
