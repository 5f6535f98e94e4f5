package incident

import (
	"time"

	"github.com/lastgood/lastgood/internal/router"
)

// maxPoints bounds the samples kept per app: an hour at one per second
// for two revisions.
const maxPoints = 7200

// series is one app's ring of samples and the counters last seen, from
// which the next interval is computed.
type series struct {
	points []Point // oldest first; bounded by maxPoints
	last   map[int]router.RevisionStats
	usage  usage // the replicas' resources
}

// sample appends one point per revision: what happened since the last
// sample.
func (s *series) sample(at time.Time, stats []router.RevisionStats) {
	if s.last == nil {
		s.last = map[int]router.RevisionStats{}
	}
	for _, st := range stats {
		prev, seen := s.last[st.Revision]
		s.last[st.Revision] = st
		p := Point{At: ms(at), Revision: st.Revision, TotalRequests: st.Requests, TotalErrors: st.Errors, InFlight: st.InFlight}
		window := st.Latency
		if seen && st.Requests >= prev.Requests {
			p.Requests, p.Errors = st.Requests-prev.Requests, st.Errors-prev.Errors
			window = st.Latency.Sub(prev.Latency)
		} else {
			p.Requests, p.Errors = st.Requests, st.Errors
		}
		p.P50Ms = millis(window.Quantile(0.5))
		p.P99Ms = millis(window.Quantile(0.99))
		s.points = append(s.points, p)
	}
	s.points = bounded(s.points)
}

// between returns copies of the points taken in [from, to].
func (s *series) between(from, to time.Time) []Point { return taken(s.points, from, to) }

// stamped is a sample that knows when it was taken.
type stamped interface{ when() time.Time }

func (p Point) when() time.Time { return p.At.Time }
func (u Usage) when() time.Time { return u.At.Time }

// bounded drops the oldest points beyond maxPoints.
func bounded[T any](points []T) []T {
	if over := len(points) - maxPoints; over > 0 {
		return append(points[:0], points[over:]...)
	}
	return points
}

// taken returns copies of the points taken in [from, to].
func taken[T stamped](points []T, from, to time.Time) []T {
	var out []T
	for _, p := range points {
		if t := p.when(); !t.Before(from) && !t.After(to) {
			out = append(out, p)
		}
	}
	return out
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
