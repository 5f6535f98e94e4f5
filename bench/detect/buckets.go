package main

import (
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/router"
)

// The simulation's histograms use the router's bucket layout, so that the
// judge sees exactly the resolution it sees in production.
var (
	bucketBounds = router.BucketBounds
	bucketOf     = router.BucketOf
)

// newHistogram returns an empty histogram with the router's layout; bounds
// are shared (never written).
func newHistogram(bounds []time.Duration) judge.Histogram {
	return judge.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
}
