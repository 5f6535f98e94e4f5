package judge

import (
	"fmt"
	"math"
	"strings"
)

// The per-task comparisons (tokens per task, tool calls per task) use the
// error rate's e-process (rate.go) on values in [0, 1] rather than 0/1
// outcomes: each task's value v, capped at K and divided by it, x =
// min(v, K)/K, takes the place of "failed". The block e-value is the same
// product of (q/r)^x ((1−q)/(1−r))^(1−x) factors, each convex in x, so
// its expectation for any distribution on [0, 1] is at most that of a
// 0/1 outcome with the same mean (the convexity bound behind Hoeffding's
// inequality; Waudby-Smith & Ramdas 2024, "Estimating means of bounded
// random variables by betting", JRSS-B 86(1), §3), and the error rate's
// argument that it is at most 1 under every null point carries over: it
// tests the means of the capped values, canary ≤ stable + δ/K, with the
// same anytime-valid guarantee. It pays for treating a value as if it
// were a coin: the variance it assumes, μ(1−μ), is at least the true one,
// so it needs more tasks than a test that knew the spread.
//
// K is fixed before any task is scored, from the stable's mean at the
// look that fixes it (MeanCap), so the bets stay predictable.

// Means are a revision's tasks: N of them, Sum of their capped values
// scaled into [0, 1].
type Means struct {
	N   float64 `json:"n"`
	Sum float64 `json:"sum"`
}

// MeanState is what a per-task comparison carries between looks.
type MeanState struct {
	Canary, Stable Means
	Rate           RateState `json:"rate"`
}

// boundedMethod is the per-task comparison's name and sources.
var boundedMethod = Method{
	Name:     "two-sample e-process for bounded means (values capped and scaled to [0, 1], reverse information projection, plug-in bets)",
	Citation: "Turner, Ly & Grünwald 2024 (Stat. Probab. Lett. 205); Grünwald, de Heide & Koolen 2024 (JRSS-B 86(5)); Waudby-Smith & Ramdas 2024 (JRSS-B 86(1))",
}

// Tolerance is how much worse than the stable a canary may be: Value in
// the metric's unit, or, when Relative, a share of the stable's value
// (0.2 for "20%"). Decrease says worse is lower (an evaluation score,
// maxDecrease) rather than higher.
type Tolerance struct {
	Value    float64
	Relative bool
	Decrease bool
}

// String writes the tolerance as a manifest would: 0.05, 20%.
func (t Tolerance) String() string {
	if t.Relative {
		return fmt.Sprintf("%.3g%%", 100*t.Value)
	}
	return fmt.Sprintf("%g", t.Value)
}

// Validate reports a tolerance no test can use.
func (t Tolerance) Validate() error {
	switch {
	case t.Value < 0 || math.IsNaN(t.Value) || math.IsInf(t.Value, 0):
		return fmt.Errorf("%w: a tolerance must be a number ≥ 0, got %v", ErrBadValue, t.Value)
	case t.Relative && t.Decrease && t.Value >= 1:
		return fmt.Errorf("%w: a relative decrease must be below 100%%, got %s", ErrBadValue, t)
	}
	return nil
}

// bound is the null boundary on values scaled into [0, 1] by cap; a
// decrease is judged on the flipped values 1 − x, where it is an
// increase: canary ≥ stable − δ becomes 1−canary ≤ (1−stable) + δ, and
// canary ≥ (1−ρ)·stable becomes 1−canary ≤ (1−ρ)(1−stable) + ρ.
func (t Tolerance) bound(cap float64) Bound {
	switch {
	case t.Relative && t.Decrease:
		return Bound{1 - t.Value, t.Value}
	case t.Relative:
		return Relative(t.Value)
	default:
		return Absolute(t.Value / cap)
	}
}

// JudgeMeans looks at a per-task comparison once: canary and stable are
// cumulative, capped at cap and scaled by it; of names what they count
// ("tasks"); tol is the tolerance,
// canaryMean and stableMean the uncapped means to report, unit their
// unit. A relative tolerance compares the capped means: canary ≤
// (1+ρ)·stable, the boundary a line through the origin (rate.go), so the
// stable's estimate is never taken for its mean; it only steers the bets.
func JudgeMeans(check, metric, unit, of string, st MeanState, canary, stable Means, cap float64, tol Tolerance, canaryMean, stableMean, alpha float64) (MeanState, Result) {
	if err := tol.Validate(); err != nil {
		return st, invalid(check, Metric(metric), alpha, err)
	}
	bound := tol.bound(cap)
	if tol.Decrease {
		canary, stable = Means{canary.N, canary.N - canary.Sum}, Means{stable.N, stable.N - stable.Sum}
	}
	// Counts that went backwards (the receiver forgot them) keep the
	// evidence so far, as the error rate does (rebase, history.go).
	if canary.N < st.Canary.N || stable.N < st.Stable.N || canary.Sum < st.Canary.Sum || stable.Sum < st.Stable.Sum {
		st = MeanState{Canary: canary, Stable: stable, Rate: st.Rate.rebase()}
	} else {
		b := rateBlock{nc: canary.N - st.Canary.N, xc: canary.Sum - st.Canary.Sum, ns: stable.N - st.Stable.N, xs: stable.Sum - st.Stable.Sum, bound: bound}
		var fail [1 + len(betRatios)]float64
		var pass float64
		if st.Stable.N > 0 {
			qs := (st.Stable.Sum + 0.5) / (st.Stable.N + 1)
			qc := (st.Canary.Sum + 0.5) / (st.Canary.N + 1)
			fail, pass = b.bets(qc, qs, st.Canary.N > 0)
		}
		st.Canary, st.Stable = canary, stable
		st.Rate = st.Rate.add(fail, pass)
	}
	ev := Evidence{
		Method: boundedMethod, Metric: Metric(metric), Unit: unit,
		CanarySamples: uint64(canary.N), StableSamples: uint64(stable.N),
		Canary: canaryMean, Stable: stableMean, Effect: canaryMean - stableMean,
		Interval:  [2]float64{math.Inf(-1), math.Inf(1)},
		LogEValue: st.Rate.LogEFail, PValue: pValue(st.Rate.MaxLogEFail), Threshold: tol.Value, Alpha: alpha,
		Warnings: append(sampleWarnings(uint64(canary.N), uint64(stable.N)),
			fmt.Sprintf("compares the means of values capped at %g %s", cap, unit),
			"assumes "+of+" are independent within a revision"),
	}
	if tol.Relative {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("the tolerance %s is relative to the stable's true (capped) mean, not to its estimate", tol))
	}
	limit := math.Log(1 / alpha)
	res := Result{Check: check, Verdict: Inconclusive, Evidence: ev}
	per := strings.TrimSuffix(of, "s")
	fig := func(m, n float64) string { return fmt.Sprintf("%.3g %s per %s (%d %s)", m, unit, per, int(n), of) }
	worse, within := "exceeds", "is within"
	if tol.Decrease {
		worse = "falls below"
	}
	switch {
	case st.Rate.MaxLogEFail >= limit:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary %s %s stable's %s by more than %s: e-value %.3g ≥ 1/α = %.3g",
			fig(canaryMean, canary.N), worse, fig(stableMean, stable.N), tol, math.Exp(st.Rate.MaxLogEFail), 1/alpha)
	case st.Rate.MaxLogEPass >= limit:
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("canary %s %s %s of stable's %s: e-value %.3g ≥ 1/α = %.3g against a larger change",
			fig(canaryMean, canary.N), within, tol, fig(stableMean, stable.N), math.Exp(st.Rate.MaxLogEPass), 1/alpha)
	default:
		res.Reason = fmt.Sprintf("not yet conclusive: canary %s, stable %s, tolerance %s, e-value %.3g of the %.3g needed to fail",
			fig(canaryMean, canary.N), fig(stableMean, stable.N), tol, math.Exp(st.Rate.MaxLogEFail), 1/alpha)
	}
	return st, res
}

// MeanCap returns the power-of-two exponent k of the cap K = 2^k for a
// per-task comparison whose stable revision averages mean: the smallest
// power of two at least four times the mean (and at least 4), so that a
// canary at twice the stable's figure is still far below the cap.
func MeanCap(mean float64) int {
	k := 2
	for float64(uint64(1)<<k) < 4*mean && k < 62 {
		k++
	}
	return k
}
