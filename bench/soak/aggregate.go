package main

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// latencyBuckets: bucket i holds latencies in [2^(i/4), 2^((i+1)/4)) µs,
// up to about 2^32 µs (71 min); enough for a 10 s client timeout.
const latencyBuckets = 128

// aggregate is the load's responses folded as they arrive: per second of
// the schedule (by when each request was due), a latency histogram, and
// a bounded sample of the errors seen. Safe for concurrent use.
type aggregate struct {
	done, failed atomic.Int64
	mu           sync.Mutex
	perSecond    []second
	latency      [latencyBuckets]int64
	errors       map[string]int64 // at most maxErrorKinds keys
	// failedBy counts failures by the Lastgood-Revision that answered
	// them (0: none did, such as a refused connection); revisions are
	// few, one per release.
	failedBy map[int]int64
}

// second is one second of the schedule.
type second struct{ Done, Failed int64 }

const maxErrorKinds = 20

func newAggregate(d time.Duration) *aggregate {
	return &aggregate{perSecond: make([]second, 0, int(d.Seconds())+60), errors: map[string]int64{}, failedBy: map[int]int64{}}
}

// add is the load's sink.
func (g *aggregate) add(r harness.Response) {
	g.done.Add(1)
	failed := r.Failed()
	if failed {
		g.failed.Add(1)
	}
	s := int(r.Due / time.Second)
	b := latencyBucket(r.Latency())
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.perSecond) <= s {
		g.perSecond = append(g.perSecond, second{})
	}
	g.perSecond[s].Done++
	g.latency[b]++
	if failed {
		g.perSecond[s].Failed++
		g.failedBy[r.Revision]++
		what := r.Err
		if what == "" {
			what = fmt.Sprintf("HTTP %d", r.Status)
		}
		if _, ok := g.errors[what]; ok || len(g.errors) < maxErrorKinds {
			g.errors[what]++
		}
	}
}

// totals returns the answers and failures so far.
func (g *aggregate) totals() (done, failed int64) { return g.done.Load(), g.failed.Load() }

// seconds returns a copy of the per-second counts.
func (g *aggregate) seconds() []second {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]second(nil), g.perSecond...)
}

// failedByRevision returns a copy of the failures by revision.
func (g *aggregate) failedByRevision() map[int]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[int]int64, len(g.failedBy))
	for k, v := range g.failedBy {
		out[k] = v
	}
	return out
}

// errorKinds returns a copy of the errors seen, by kind.
func (g *aggregate) errorKinds() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int64, len(g.errors))
	for k, v := range g.errors {
		out[k] = v
	}
	return out
}

func latencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	return min(int(4*math.Log2(us)), latencyBuckets-1)
}

// latencyAt returns the upper edge of the bucket holding the q-quantile
// (nearest rank): at most 19 % above the true value.
func (g *aggregate) latencyAt(q float64) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, c := range g.latency {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i, c := range g.latency {
		seen += c
		if seen >= max(rank, 1) {
			return time.Duration(math.Pow(2, float64(i+1)/4) * float64(time.Microsecond))
		}
	}
	return 0
}
