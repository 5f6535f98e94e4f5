package router

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear: every power of two from 1µs up is
// split into subBuckets equal-width buckets, so a bucket's width is at most
// 1/subBuckets (12.5%) of its lower bound. Bucket 0 holds everything below
// 1µs and the last bucket everything from 2^octaves µs (about 134s) up.
const (
	subBuckets = 8
	octaves    = 27
	numBuckets = 1 + octaves*subBuckets + 1
	// bucketUnit is the width of the narrowest bucket, 1µs/subBuckets.
	bucketUnit = time.Microsecond / subBuckets
)

// Histogram is a snapshot of latency counts. Bucket i counts observations in
// [Bounds[i-1], Bounds[i]) (with Bounds[-1] taken as 0); the last bound is
// math.MaxInt64, an open-ended overflow bucket.
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

// Quantile estimates the q-quantile (0 <= q <= 1) by linear interpolation
// inside the bucket that holds it, so the estimate is off by at most that
// bucket's width. It returns 0 for an empty histogram, and the lower bound of
// the overflow bucket for observations that fell into it.
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 || len(h.Bounds) != len(h.Counts) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var cum float64
	for i, c := range h.Counts {
		if c == 0 || cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		lower := time.Duration(0)
		if i > 0 {
			lower = h.Bounds[i-1]
		}
		upper := h.Bounds[i]
		if upper == math.MaxInt64 {
			return lower
		}
		frac := (rank - cum) / float64(c)
		return lower + time.Duration(frac*float64(upper-lower))
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Sub returns the observations made between older and h, two snapshots of
// the same histogram, for windowed quantiles. If older has other bounds (or
// is empty) it returns a copy of h.
func (h Histogram) Sub(older Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts))}
	copy(out.Counts, h.Counts)
	if len(older.Counts) != len(h.Counts) {
		return out
	}
	for i, c := range older.Counts {
		if c <= out.Counts[i] {
			out.Counts[i] -= c
		} else {
			out.Counts[i] = 0
		}
	}
	return out
}

// latencyHistogram is the live, lock-free form of Histogram.
type latencyHistogram struct {
	counts [numBuckets]atomic.Uint64
}

func (h *latencyHistogram) observe(d time.Duration) {
	h.counts[bucketOf(d)].Add(1)
}

func (h *latencyHistogram) snapshot() Histogram {
	out := Histogram{Bounds: bucketBounds(), Counts: make([]uint64, numBuckets)}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}

// bucketOf returns the index of the bucket that holds d.
func bucketOf(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	u := uint64(d / bucketUnit) // >= subBuckets
	octave := bits.Len64(u) - 4 // u in [8<<octave, 16<<octave)
	if octave >= octaves {
		return numBuckets - 1
	}
	sub := int(u>>uint(octave)) & (subBuckets - 1)
	return 1 + octave*subBuckets + sub
}

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

// BucketBounds returns the exclusive upper bound of every bucket of the
// router's latency histograms, for code that builds histograms of the same
// layout (simulations, tests).
func BucketBounds() []time.Duration { return bucketBounds() }

// BucketOf returns the index of the histogram bucket that holds d.
func BucketOf(d time.Duration) int { return bucketOf(d) }
