package judge

import (
	"math"
	"time"
)

// Histogram is a latency histogram with the router's layout: bucket i
// counts observations in [Bounds[i-1], Bounds[i]) with Bounds[-1] = 0, and
// a last bound of math.MaxInt64 is an open-ended overflow bucket. It has
// the same fields as router.Histogram, so one converts to the other:
// judge.Histogram(stats.Latency).
type Histogram struct {
	Bounds []time.Duration
	Counts []uint64
}

// Count returns the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// upper returns bucket i's exclusive upper bound in seconds, +Inf for the
// overflow bucket.
func (h Histogram) upper(i int) float64 {
	if h.Bounds[i] == math.MaxInt64 {
		return math.Inf(1)
	}
	return h.Bounds[i].Seconds()
}

// Sample is what the router has counted of one revision, cumulatively,
// since the revision first took traffic.
type Sample struct {
	Requests uint64
	Errors   uint64
	Latency  Histogram
	// Status counts responses by class (index status/100) and Codes by
	// status code; Routes are the same counts per path template (the
	// router's RouteStats). The tests here read Requests, Errors and
	// Latency only; internal/analysis derives those from these for the
	// status-mix and per-route checks and for a check's own error
	// statuses.
	Status [6]uint64
	Codes  map[int]uint64
	Routes map[string]Sample
	// Sessions are the counts per session bucket with session affinity
	// (Requests, Errors, Status), for DesignEffect.
	Sessions []Sample
}

// Observation is one look at a rollout: cumulative samples of both
// revisions taken at the same moment, and for how long the canary has
// been taking traffic (for requestRate; the judge reads no clock).
type Observation struct {
	Canary Sample
	Stable Sample
	// History is what the stable revision served before the counts in
	// Stable begin (before the rollout's first look), disjoint from them.
	// A comparison takes it at its first look and uses it for its bets and
	// cut-offs only, never as evidence (history.go); the zero value is no
	// history.
	History Sample
	Elapsed time.Duration
}
