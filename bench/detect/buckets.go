package main

import (
	"math"
	"math/bits"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// The router keeps its bucket layout unexported, so it is replicated here:
// log-linear, 8 equal buckets per power of two from 1µs, bucket 0 below
// 1µs, an overflow bucket from 2^27 µs (about 134 s) up. buckets_test.go
// checks the replica against its own definition; if the router's layout
// changes, change both.
const (
	subBuckets = 8
	octaves    = 27
	numBuckets = 1 + octaves*subBuckets + 1
	bucketUnit = time.Microsecond / subBuckets
)

// bucketBounds returns the exclusive upper bound of every bucket.
func bucketBounds() []time.Duration {
	b := make([]time.Duration, numBuckets)
	b[0] = time.Microsecond
	for octave := range octaves {
		for sub := range subBuckets {
			b[1+octave*subBuckets+sub] = bucketUnit * time.Duration((subBuckets+sub+1)<<octave)
		}
	}
	b[numBuckets-1] = math.MaxInt64
	return b
}

// bucketOf returns the index of the bucket that holds d.
func bucketOf(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	u := uint64(d / bucketUnit)
	octave := bits.Len64(u) - 4
	if octave >= octaves {
		return numBuckets - 1
	}
	sub := int(u>>uint(octave)) & (subBuckets - 1)
	return 1 + octave*subBuckets + sub
}

// newHistogram returns an empty histogram with the router's layout; bounds
// are shared (never written).
func newHistogram(bounds []time.Duration) judge.Histogram {
	return judge.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
}
