package judge

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// A relative tolerance is a null boundary through the origin: a canary
// exactly 20% worse than the stable is on it, and must not be failed more
// often than α under continuous monitoring, whatever the stable's rate.
func TestRelativeErrorRateNullNeverFailsMoreThanAlpha(t *testing.T) {
	const alpha = 0.05
	for i, base := range []float64{0.01, 0.05, 0.3} {
		check := Compare{Metric: ErrorRate, MaxIncrease: 0.2, Relative: true}
		fails, _ := monitor(t, check, arm{errRate: base * 1.2}, arm{errRate: base}, 1000, 60, 40, alpha, uint64(40+i))
		assertWithinAlpha(t, fails, 1000, alpha)
	}
}

func TestRelativeErrorRateCatchesATripling(t *testing.T) {
	check := Compare{Check: "tools", Metric: ErrorRate, MaxIncrease: 0.2, Relative: true}
	fails, _ := monitor(t, check, arm{errRate: 0.06}, arm{errRate: 0.02}, 50, 100, 50, 0.05, 7)
	if fails < 48 {
		t.Errorf("2%% → 6%% with a 20%% relative tolerance: failed in %d of 50 rollouts", fails)
	}
	// Reasons say the tolerance is relative.
	var st RateState
	var res Result
	for k := uint64(1); k <= 4; k++ {
		obs := Observation{Canary: Sample{Requests: 1000 * k, Errors: 60 * k}, Stable: Sample{Requests: 4000 * k, Errors: 80 * k}}
		st, res = check.Judge(st, obs, 0.05)
	}
	if res.Verdict != Fail || !strings.Contains(res.Reason, "by more than 20% relative") {
		t.Errorf("verdict %v: %s", res.Verdict, res.Reason)
	}
}

// An absolute tolerance of 0.02 fails a canary at 3% against a stable at
// 0.5% only when the increase passes 2 points; a relative 20% fails it at
// once: the two are different nulls, and neither is the other's estimate.
func TestRelativeAndAbsoluteAreDifferentNulls(t *testing.T) {
	abs := Compare{Metric: ErrorRate, MaxIncrease: 0.02}
	rel := Compare{Metric: ErrorRate, MaxIncrease: 0.2, Relative: true}
	can, st := arm{errRate: 0.02}, arm{errRate: 0.005}
	fa, _ := monitor(t, abs, can, st, 100, 60, 50, 0.05, 11)
	fr, _ := monitor(t, rel, can, st, 100, 60, 50, 0.05, 11)
	if fa > 10 || fr < 90 {
		t.Errorf("0.5%% → 2%%: absolute 0.02 failed %d of 100, relative 20%% failed %d of 100", fa, fr)
	}
}

func TestRelativeLatencyIsRefused(t *testing.T) {
	if err := (Compare{Check: "p99", Metric: LatencyP99, MaxIncrease: 0.2, Relative: true}).Validate(); err == nil {
		t.Fatal("a relative latency tolerance was accepted")
	}
	if err := (Compare{Check: "e", Metric: ErrorRate, MaxIncrease: 2, Relative: true}).Validate(); err != nil {
		t.Fatalf("a relative 200%% on an error rate: %v", err)
	}
}

// simulateTol is simulateMeans with any tolerance and draws in [0, 1].
func simulateTol(rng *rand.Rand, looks int, tol Tolerance, canary, stable func(*rand.Rand) float64) Verdict {
	var st MeanState
	var c, s Means
	for range looks {
		for range 20 {
			c.N++
			c.Sum += canary(rng)
			s.N++
			s.Sum += stable(rng)
		}
		var res Result
		st, res = JudgeMeans("q", "evalScore", "points", "evaluations", st, c, s, 1, tol, 0, 0, 0.05)
		if res.Verdict != Inconclusive {
			return res.Verdict
		}
	}
	return Inconclusive
}

// Bounded means on the boundary of each kind of tolerance — relative
// increase, absolute decrease, relative decrease — fail at most α of the
// time; past it they fail.
func TestBoundedMeansToleranceKinds(t *testing.T) {
	uniform := func(m float64) func(*rand.Rand) float64 {
		// values in [0, 2m] (m ≤ 0.5) with mean m
		return func(r *rand.Rand) float64 { return 2 * m * r.Float64() }
	}
	cases := []struct {
		name         string
		tol          Tolerance
		onNull, past float64 // canary means; the stable's is 0.4
	}{
		{"relative increase", Tolerance{Value: 0.2, Relative: true}, 0.48, 0.6},
		{"absolute decrease", Tolerance{Value: 0.05, Decrease: true}, 0.35, 0.25},
		{"relative decrease", Tolerance{Value: 0.1, Relative: true, Decrease: true}, 0.36, 0.25},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			fails := 0
			for range 400 {
				if simulateTol(rng, 60, c.tol, uniform(c.onNull), uniform(0.4)) == Fail {
					fails++
				}
			}
			assertWithinAlpha(t, fails, 400, 0.05)
			caught := 0
			for range 40 {
				if simulateTol(rng, 100, c.tol, uniform(c.past), uniform(0.4)) == Fail {
					caught++
				}
			}
			if caught < 36 {
				t.Errorf("canary mean %g against 0.4 (tolerance %s): failed %d of 40", c.past, c.tol, caught)
			}
		})
	}
}
