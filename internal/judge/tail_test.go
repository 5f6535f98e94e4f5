package judge

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestLatencyQuantileMetric(t *testing.T) {
	for _, tc := range []struct {
		m Metric
		q float64
	}{{LatencyP999, 0.999}, {LatencyQuantile(0.999), 0.999}, {LatencyQuantile(0.75), 0.75}} {
		if q, ok := tc.m.Quantile(); !ok || q != tc.q {
			t.Errorf("%s.Quantile() = %v, %v; want %v", tc.m, q, ok, tc.q)
		}
		if m, err := ParseMetric(string(tc.m)); err != nil || m != tc.m {
			t.Errorf("ParseMetric(%q) = %q, %v", tc.m, m, err)
		}
		if v, err := ParseValue(tc.m, "20ms"); err != nil || v != 0.02 {
			t.Errorf("ParseValue(%s, 20ms) = %v, %v", tc.m, v, err)
		}
	}
	for _, bad := range []string{"latencyQuantile=1", "latencyQuantile=0", "latencyQuantile=x", "latencyP9999"} {
		if _, err := ParseMetric(bad); err == nil {
			t.Errorf("ParseMetric(%q) accepted", bad)
		}
	}
}

// tailArm is a lognormal body with a share of requests made slower.
type tailArm struct {
	median    time.Duration
	sigma     float64
	slowShare float64
	slow      time.Duration
}

func (a tailArm) serve(rng *rand.Rand, s *Sample, n int) {
	for range n {
		s.Requests++
		d := time.Duration(float64(a.median) * math.Exp(a.sigma*rng.NormFloat64()))
		if rng.Float64() < a.slowShare {
			d += a.slow
		}
		s.Latency.Counts[bucketIndex(s.Latency.Bounds, d)]++
	}
}

// TestTailLatencyOnlyP999Sees: 0.4% of the canary's requests 400ms
// slower leaves its p99 where it was, and moves its p99.9 far beyond a
// 50ms tolerance. The p99.9 comparison fails it; the p99 one does not;
// neither fails an identical canary more often than α allows.
func TestTailLatencyOnlyP999Sees(t *testing.T) {
	const alpha = 0.05
	base := tailArm{median: 20 * time.Millisecond, sigma: 0.3}
	slow := base
	slow.slowShare, slow.slow = 0.004, 400*time.Millisecond
	run := func(m Metric, canary tailArm, rollouts int) (fails int) {
		bounds := testBounds()
		for r := range rollouts {
			rng := rand.New(rand.NewPCG(7, uint64(r)))
			obs := Observation{
				Canary: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
				Stable: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
			}
			check := Compare{Check: "tail", Metric: m, MaxIncrease: 0.05}
			var st RateState
			for range 200 {
				canary.serve(rng, &obs.Canary, 200)
				base.serve(rng, &obs.Stable, 200)
				var res Result
				if st, res = check.Judge(st, obs, alpha); res.Verdict == Fail {
					fails++
					break
				}
			}
		}
		return fails
	}
	if n := run(LatencyP999, slow, 20); n < 18 {
		t.Errorf("p99.9 compare failed %d of 20 canaries with 0.4%% of requests 400ms slower; want ≥ 18", n)
	}
	if n := run(LatencyP99, slow, 20); n > 2 {
		t.Errorf("p99 compare failed %d of 20 canaries whose p99 did not move; want ≤ 2", n)
	}
	if n := run(LatencyP999, base, 40); n > 6 {
		t.Errorf("p99.9 compare failed %d of 40 identical canaries at α = %g; want ≤ 6", n, alpha)
	}
}
