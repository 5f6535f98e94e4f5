package judge

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// arm simulates one revision: an error probability and lognormal
// latencies with the given median and σ.
type arm struct {
	errRate float64
	median  time.Duration
	sigma   float64
	shift   time.Duration
}

// serve adds n requests of a to s.
func (a arm) serve(rng *rand.Rand, s *Sample, n int) {
	for range n {
		s.Requests++
		if rng.Float64() < a.errRate {
			s.Errors++
		}
		if s.Latency.Counts != nil {
			d := time.Duration(float64(a.median)*math.Exp(a.sigma*rng.NormFloat64())) + a.shift
			s.Latency.Counts[bucketIndex(s.Latency.Bounds, d)]++
		}
	}
}

// monitor runs rollouts of canary against stable, looking after every
// block of perLook canary and 4·perLook stable requests, and returns how
// many rollouts failed and after how many canary requests each did.
func monitor(t *testing.T, check Compare, canary, stable arm, rollouts, looks, perLook int, alpha float64, seed uint64) (fails int, at []uint64) {
	t.Helper()
	return monitorAfter(t, check, canary, stable, arm{}, 0, rollouts, looks, perLook, alpha, seed)
}

// monitorAfter is monitor with a history: the stable revision served
// historyN requests as history did before the rollout's first look.
func monitorAfter(t *testing.T, check Compare, canary, stable, history arm, historyN, rollouts, looks, perLook int, alpha float64, seed uint64) (fails int, at []uint64) {
	t.Helper()
	bounds := testBounds()
	for r := range rollouts {
		rng := rand.New(rand.NewPCG(seed, uint64(r)))
		var obs Observation
		if _, ok := check.Metric.Quantile(); ok {
			obs.Canary.Latency = Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
			obs.Stable.Latency = Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
			obs.History.Latency = Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
		}
		history.serve(rng, &obs.History, historyN)
		var st RateState
		for range looks {
			canary.serve(rng, &obs.Canary, perLook)
			stable.serve(rng, &obs.Stable, 4*perLook)
			var res Result
			st, res = check.Judge(st, obs, alpha)
			if res.Verdict == Fail {
				fails++
				at = append(at, obs.Canary.Requests)
				break
			}
		}
	}
	return fails, at
}

// binomialTail returns P(X ≥ k) for X ~ Binomial(n, p).
func binomialTail(k, n int, p float64) float64 {
	var sum float64
	ln, _ := math.Lgamma(float64(n + 1))
	for i := k; i <= n; i++ {
		li, _ := math.Lgamma(float64(i + 1))
		lni, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(ln - li - lni + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

// assertWithinAlpha fails the test when fails of n rollouts is
// significantly (one-sided, at 0.001) more than alpha·n: the false-fail
// rate under continuous monitoring exceeds α.
func assertWithinAlpha(t *testing.T, fails, n int, alpha float64) {
	t.Helper()
	if tail := binomialTail(fails, n, alpha); tail < 0.001 {
		t.Fatalf("%d of %d null rollouts failed: %.1f%%, significantly above α = %v (P = %.2g)", fails, n, 100*float64(fails)/float64(n), alpha, tail)
	}
	t.Logf("%d of %d null rollouts failed (α = %v)", fails, n, alpha)
}

// The simulations use α = 0.05 so that an excess over α would show in 1000
// rollouts; each rollout is looked at after every block, continuously.

func TestErrorRateNullNeverFailsMoreThanAlpha(t *testing.T) {
	const alpha = 0.05
	t.Run("equal rates", func(t *testing.T) {
		same := arm{errRate: 0.05}
		t.Parallel()
		fails, _ := monitor(t, Compare{Metric: ErrorRate}, same, same, 1000, 60, 20, alpha, 1)
		assertWithinAlpha(t, fails, 1000, alpha)
	})
	t.Run("on the tolerance", func(t *testing.T) {
		t.Parallel()
		fails, _ := monitor(t, Compare{Metric: ErrorRate, MaxIncrease: 0.02}, arm{errRate: 0.07}, arm{errRate: 0.05}, 1000, 60, 20, alpha, 2)
		assertWithinAlpha(t, fails, 1000, alpha)
	})
	t.Run("tiny rates", func(t *testing.T) {
		same := arm{errRate: 0.002}
		t.Parallel()
		fails, _ := monitor(t, Compare{Metric: ErrorRate}, same, same, 1000, 60, 50, alpha, 3)
		assertWithinAlpha(t, fails, 1000, alpha)
	})
}

func TestLatencyNullNeverFailsMoreThanAlpha(t *testing.T) {
	const alpha = 0.05
	same := arm{median: 50 * time.Millisecond, sigma: 0.5}
	for _, m := range []Metric{LatencyP50, LatencyP99} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			fails, _ := monitor(t, Compare{Metric: m}, same, same, 1000, 60, 20, alpha, 4)
			assertWithinAlpha(t, fails, 1000, alpha)
		})
	}
	// A canary exactly δ slower everywhere is on the null's boundary: the
	// cut-offs round c+δ to bucket bounds, which must not tip it over.
	t.Run("p99 on the tolerance", func(t *testing.T) {
		t.Parallel()
		slower := same
		slower.shift = 20 * time.Millisecond
		fails, _ := monitor(t, Compare{Metric: LatencyP99, MaxIncrease: 0.02}, slower, same, 1000, 60, 20, alpha, 6)
		assertWithinAlpha(t, fails, 1000, alpha)
	})
	// The error-rate test's null is on its boundary in A/A; with a
	// canary slightly faster the latency test must fail even less.
	t.Run("p99 of a faster canary", func(t *testing.T) {
		t.Parallel()
		faster := same
		faster.median = 45 * time.Millisecond
		fails, _ := monitor(t, Compare{Metric: LatencyP99}, faster, same, 1000, 60, 20, alpha, 7)
		if fails > 1000*alpha/5 {
			t.Fatalf("%d of 1000 rollouts of a faster canary failed, want at most %v", fails, 1000*alpha/5)
		}
	})
}

func TestRealIncreasesAreDetected(t *testing.T) {
	const alpha = 0.01
	base := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5}
	worse := func(f func(*arm)) arm { a := base; f(&a); return a }
	for _, c := range []struct {
		name   string
		check  Compare
		canary arm
		looks  int
	}{
		{"errors 1% to 5%", Compare{Metric: ErrorRate}, worse(func(a *arm) { a.errRate = 0.05 }), 60},
		{"errors 1% to 5% with a 2% tolerance", Compare{Metric: ErrorRate, MaxIncrease: 0.02}, worse(func(a *arm) { a.errRate = 0.05 }), 120},
		{"p99 doubled", Compare{Metric: LatencyP99}, worse(func(a *arm) { a.median *= 2 }), 5},
		{"p99 20% higher", Compare{Metric: LatencyP99}, worse(func(a *arm) { a.median = a.median * 6 / 5 }), 150},
		{"p99 60ms higher with a 20ms tolerance", Compare{Metric: LatencyP99, MaxIncrease: 0.02}, worse(func(a *arm) { a.shift = 60 * time.Millisecond }), 150},
		{"p50 10% higher", Compare{Metric: LatencyP50}, worse(func(a *arm) { a.median = a.median * 11 / 10 }), 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			const rollouts = 200
			fails, at := monitor(t, c.check, c.canary, base, rollouts, c.looks, 40, alpha, 5)
			if fails < rollouts*95/100 {
				t.Fatalf("detected in %d of %d rollouts within %d canary requests, want ≥ 95%%", fails, rollouts, c.looks*40)
			}
			t.Logf("detected in %d of %d; first at %d canary requests", fails, rollouts, at[0])
		})
	}
}

// The stable's history aims the bets and the first cut-off; it is never
// evidence, so a history that says nothing true about the stable now — a
// past incident, a faster past — cannot make a good canary fail more than
// α of the time.
func TestHistoryNeverMakesTheNullFailMoreThanAlpha(t *testing.T) {
	const alpha = 0.05
	now := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5}
	for _, c := range []struct {
		name    string
		check   Compare
		history arm
		n       int
	}{
		{"errors, a true history", Compare{Metric: ErrorRate}, now, 20000},
		{"errors, a past incident", Compare{Metric: ErrorRate}, arm{errRate: 0.2}, 20000},
		{"errors, a cleaner past", Compare{Metric: ErrorRate}, arm{}, 5000},
		{"p99, a true history", Compare{Metric: LatencyP99}, now, 20000},
		{"p99, a faster past", Compare{Metric: LatencyP99}, arm{median: 20 * time.Millisecond, sigma: 0.5}, 20000},
		{"p99, a slower past", Compare{Metric: LatencyP99}, arm{median: 80 * time.Millisecond, sigma: 0.8}, 3000},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fails, _ := monitorAfter(t, c.check, now, now, c.history, c.n, 1000, 60, 20, alpha, 8)
			assertWithinAlpha(t, fails, 1000, alpha)
		})
	}
}

// With a history, the first look already bets: on the stable's rate and at
// a cut-off near its p99, both known before the canary served a request.
// Without one it only learns them.
func TestHistoryLetsTheFirstLookDecide(t *testing.T) {
	bounds := testBounds()
	hist := func() Histogram { return Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))} }
	good := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5}
	bad := arm{errRate: 0.3, median: 150 * time.Millisecond, sigma: 0.5}
	for _, m := range []Metric{ErrorRate, LatencyP99} {
		t.Run(string(m), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 9))
			obs := Observation{Canary: Sample{Latency: hist()}, Stable: Sample{Latency: hist()}, History: Sample{Latency: hist()}}
			good.serve(rng, &obs.History, 12000)
			bad.serve(rng, &obs.Canary, 40)
			good.serve(rng, &obs.Stable, 160)
			check := Compare{Check: "c", Metric: m}
			_, res := check.Judge(RateState{}, obs, 0.005)
			if res.Verdict != Fail {
				t.Fatalf("first look with a history: %s (%s), want fail", res.Verdict, res.Reason)
			}
			// 12,000 requests of history weigh 10,000, less the 160 the
			// stable served since the first look.
			if h := res.Evidence.HistorySamples; h != 10000-160 {
				t.Fatalf("evidence says %d requests of history weighed, want 10,000 − 160", h)
			}
			obs.History = Sample{}
			if _, res := check.Judge(RateState{}, obs, 0.005); res.Verdict != Inconclusive {
				t.Fatalf("first look without a history: %s (%s), want inconclusive", res.Verdict, res.Reason)
			}
		})
	}
}

// A reset of the counters (the router was recreated) does not start a
// fresh test: the e-processes go on multiplying, so however many resets
// there are, a good canary is failed with probability at most α over the
// whole rollout. Starting afresh at each of ten resets would give it ten
// chances at α.
func TestCounterResetsDoNotSpendAlphaAgain(t *testing.T) {
	const alpha = 0.05
	bounds := testBounds()
	same := arm{errRate: 0.05, median: 50 * time.Millisecond, sigma: 0.5}
	for _, m := range []Metric{ErrorRate, LatencyP99} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			check := Compare{Check: "c", Metric: m}
			const rollouts = 400
			fails := 0
			for r := range rollouts {
				rng := rand.New(rand.NewPCG(10, uint64(r)))
				fresh := func() Observation {
					return Observation{
						Canary: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
						Stable: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
					}
				}
				obs := fresh()
				var st RateState
				failed := false
				for look := range 200 {
					if look%20 == 19 {
						obs = fresh() // both routers' counters start from zero
					}
					same.serve(rng, &obs.Canary, 20)
					same.serve(rng, &obs.Stable, 80)
					var res Result
					if st, res = check.Judge(st, obs, alpha); res.Verdict == Fail {
						fails, failed = fails+1, true
						break
					}
				}
				if !failed && st.Restarts != 10 {
					t.Fatalf("rollout %d: %d restarts seen, want 10", r, st.Restarts)
				}
			}
			assertWithinAlpha(t, fails, rollouts, alpha)
		})
	}
}

// Inside the rollback window the previous revision keeps a small
// holdback of the traffic, and load changes (a surge, CPU contention, a
// neighbour) hit both revisions at the same moments: error rates and
// latencies move, together. Each block's e-value is a valid bet under
// every null point whatever the common rate is at that moment, so a good
// canary still fails with probability at most α — also at a 19:1 split.
func TestCommonShiftsDoNotFailAGoodCanary(t *testing.T) {
	const alpha = 0.05
	bounds := testBounds()
	calm := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5}
	shifted := arm{errRate: 0.04, median: 110 * time.Millisecond, sigma: 0.6, shift: 20 * time.Millisecond}
	for _, m := range []Metric{ErrorRate, LatencyP99} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			check := Compare{Check: "c", Metric: m}
			const rollouts = 500
			fails := 0
			for r := range rollouts {
				rng := rand.New(rand.NewPCG(12, uint64(r)))
				obs := Observation{
					Canary: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
					Stable: Sample{Latency: Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}},
				}
				var st RateState
				for look := range 120 {
					now := calm
					if look%30 >= 20 { // a third of the time, both are hit
						now = shifted
					}
					now.serve(rng, &obs.Canary, 95)
					now.serve(rng, &obs.Stable, 5)
					var res Result
					if st, res = check.Judge(st, obs, alpha); res.Verdict == Fail {
						fails++
						break
					}
				}
			}
			assertWithinAlpha(t, fails, rollouts, alpha)
		})
	}
}
