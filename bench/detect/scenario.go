package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// traffic is the load every rollout of a split sees: 200 req/s, a share
// to the canary, split exactly (the router's weighted schedule is
// deterministic).
type traffic struct {
	canaryPerSec, stablePerSec int
}

// percent is the canary's share of the traffic.
func (t traffic) percent() int {
	return 100 * t.canaryPerSec / (t.canaryPerSec + t.stablePerSec)
}

// arm is one revision's behaviour: an error probability and lognormal
// latencies (median × exp(σZ)), scaled by factor.
type arm struct {
	errRate float64
	median  time.Duration
	sigma   float64
	factor  float64
}

// p99 returns the arm's true 99th latency percentile in seconds.
func (a arm) p99() float64 {
	return a.median.Seconds() * a.factor * math.Exp(a.sigma*z99)
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// scenario is one row of the report.
type scenario struct {
	name           string
	stable, canary arm
	// kind says which comparator is planned for: "error", "latency" or
	// "none" (A/A).
	kind string
}

// revision accumulates what the router would have counted.
type revision struct {
	sample judge.Sample
	// window is the histogram and counts at the last Flagger check.
	windowReq, windowErr uint64
	windowLat            []uint64
}

func newRevision(bounds []time.Duration) *revision {
	return &revision{sample: judge.Sample{Latency: newHistogram(bounds)}, windowLat: make([]uint64, len(bounds))}
}

// serve draws n requests from a into r.
func (r *revision) serve(rng *rand.Rand, a arm, n int) {
	mu := math.Log(a.median.Seconds() * a.factor)
	for range n {
		r.sample.Requests++
		if rng.Float64() < a.errRate {
			r.sample.Errors++
		}
		d := time.Duration(math.Exp(mu+a.sigma*rng.NormFloat64()) * float64(time.Second))
		r.sample.Latency.Counts[bucketOf(d)]++
	}
}

// window returns the requests, errors and latency histogram since the
// last call, and starts a new window.
func (r *revision) window() (req, errs uint64, lat judge.Histogram) {
	req, errs = r.sample.Requests-r.windowReq, r.sample.Errors-r.windowErr
	lat = judge.Histogram{Bounds: r.sample.Latency.Bounds, Counts: make([]uint64, len(r.windowLat))}
	for i, c := range r.sample.Latency.Counts {
		lat.Counts[i] = c - r.windowLat[i]
	}
	r.windowReq, r.windowErr = r.sample.Requests, r.sample.Errors
	copy(r.windowLat, r.sample.Latency.Counts)
	return req, errs, lat
}
