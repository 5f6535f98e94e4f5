package router

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketOfMatchesBounds(t *testing.T) {
	bounds := bucketBounds()
	if len(bounds) != numBuckets {
		t.Fatalf("%d bounds, want %d", len(bounds), numBuckets)
	}
	if !slices.IsSorted(bounds) {
		t.Fatalf("bounds not increasing: %v", bounds)
	}
	for i := range numBuckets - 1 {
		lower := time.Duration(0)
		if i > 0 {
			lower = bounds[i-1]
		}
		if got := bucketOf(lower); got != i {
			t.Errorf("bucketOf(%v) = %d, want %d (lower bound)", lower, got, i)
		}
		if got := bucketOf(bounds[i] - 1); got != i {
			t.Errorf("bucketOf(%v) = %d, want %d (just below upper bound)", bounds[i]-1, got, i)
		}
		if i > 0 && float64(bounds[i]-lower)/float64(lower) > 1.0/subBuckets+1e-9 {
			t.Errorf("bucket %d [%v, %v) is wider than 1/%d of its lower bound", i, lower, bounds[i], subBuckets)
		}
	}
	if bounds[numBuckets-2] < 100*time.Second {
		t.Errorf("largest finite bound %v, want at least 100s", bounds[numBuckets-2])
	}
	if got := bucketOf(time.Hour); got != numBuckets-1 {
		t.Errorf("bucketOf(1h) = %d, want the overflow bucket %d", got, numBuckets-1)
	}
}

func TestQuantileWithinBucketError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h latencyHistogram
	samples := make([]time.Duration, 20000)
	for i := range samples {
		// Log-normal around 2ms: spans many octaves.
		d := time.Duration(float64(2*time.Millisecond) * math.Exp(rng.NormFloat64()))
		samples[i] = d
		h.observe(d)
	}
	slices.Sort(samples)
	snap := h.snapshot()
	if snap.Count() != uint64(len(samples)) {
		t.Fatalf("Count() = %d, want %d", snap.Count(), len(samples))
	}
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := snap.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/subBuckets {
			t.Errorf("Quantile(%v) = %v, exact %v: relative error %.3f > %.3f", q, got, exact, rel, 1.0/subBuckets)
		}
	}
}

func TestQuantileEdges(t *testing.T) {
	var h latencyHistogram
	if got := h.snapshot().Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile = %v, want 0", got)
	}
	h.observe(500 * time.Nanosecond)
	h.observe(10 * time.Minute)
	snap := h.snapshot()
	if got := snap.Quantile(0); got != 0 {
		t.Errorf("Quantile(0) = %v, want 0 (lower bound of the first bucket)", got)
	}
	if got := snap.Quantile(1); got != snap.Bounds[numBuckets-2] {
		t.Errorf("Quantile(1) = %v, want the overflow bucket's lower bound %v", got, snap.Bounds[numBuckets-2])
	}
}

func TestHistogramSubGivesWindow(t *testing.T) {
	var h latencyHistogram
	for range 100 {
		h.observe(time.Millisecond)
	}
	older := h.snapshot()
	for range 50 {
		h.observe(100 * time.Millisecond)
	}
	window := h.snapshot().Sub(older)
	if window.Count() != 50 {
		t.Fatalf("window Count() = %d, want 50", window.Count())
	}
	if p50 := window.Quantile(0.5); p50 < 90*time.Millisecond || p50 > 113*time.Millisecond {
		t.Errorf("window p50 = %v, want about 100ms", p50)
	}
	if whole := h.snapshot().Sub(Histogram{}); whole.Count() != 150 {
		t.Errorf("Sub(empty) Count() = %d, want 150", whole.Count())
	}
}

func BenchmarkObserve(b *testing.B) {
	var h latencyHistogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 997 * time.Nanosecond
			h.observe(d % time.Second)
		}
	})
}
