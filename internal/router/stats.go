package router

import (
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
	// Errors counts 5xx responses, including the router's own 502s, and
	// responses whose body could not be relayed to the end.
	Errors uint64
	// Status counts responses by class: index = status/100, [0] unused.
	// Requests abandoned by the client count as 499.
	Status   [6]uint64
	InFlight int64
	Latency  Histogram
}

// revisionStats is the live, lock-free form of RevisionStats. One exists per
// revision for the router's lifetime, so counts survive table swaps.
type revisionStats struct {
	revision int
	requests atomic.Uint64
	errors   atomic.Uint64
	status   [6]atomic.Uint64
	inFlight atomic.Int64
	latency  latencyHistogram
}

// record accounts for one finished request. failed marks a failure that the
// status does not show (the response body was cut short).
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

func (s *revisionStats) snapshot() RevisionStats {
	out := RevisionStats{
		Revision: s.revision,
		Requests: s.requests.Load(),
		Errors:   s.errors.Load(),
		InFlight: s.inFlight.Load(),
		Latency:  s.latency.snapshot(),
	}
	for i := range s.status {
		out.Status[i] = s.status[i].Load()
	}
	return out
}
