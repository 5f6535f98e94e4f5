package stats

import (
	"math"
	"testing"
)

func TestMedianInterval(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	med, lo, hi := Median(xs)
	// For n = 1000 the 95% ranks are 469 and 532.
	if med != 500 || lo != 469 || hi != 532 {
		t.Fatalf("median %v [%v, %v], want 500 [469, 532]", med, lo, hi)
	}
	mean, half := Mean(xs)
	if mean != 500.5 || math.Abs(half-1.96*math.Sqrt(83416.67)/math.Sqrt(1000)) > 0.01 {
		t.Fatalf("mean %v ± %v", mean, half)
	}
}

func TestClopperPearson(t *testing.T) {
	lo, hi := ClopperPearson(10, 1000)
	// The beta quantiles B(0.025; 10, 991) and B(0.975; 11, 990), computed
	// independently (an exact binomial sum in Python, bisected).
	if math.Abs(lo-0.0048055) > 1e-7 || math.Abs(hi-0.0183132) > 1e-7 {
		t.Fatalf("interval [%v, %v]", lo, hi)
	}
}
