package judge

import (
	"fmt"
	"math"
	"time"
)

// latencyMethod is the latency comparison's name and sources.
var latencyMethod = Method{
	Name:     "quantile confidence sequences per revision (beta-binomial mixture), compared at bucket bounds",
	Citation: "Howard & Ramdas 2022 (Bernoulli 28(3)); Howard, Ramdas, McAuliffe & Sekhon 2021 (Ann. Statist. 49(2))",
}

// bucketWarning says what reading quantiles from a histogram costs.
const bucketWarning = "quantile bounds are histogram bucket bounds (buckets up to 12.5% wide), not exact latencies"

// latency compares the q-quantiles of the two revisions' latencies. Each
// decision rests on one bound of each revision's quantile (quantile.go),
// each at α/2, so with probability ≥ 1−α both hold at every look, and:
//
//   - Fail when some bounds show ξ_canary ≥ b_c and ξ_stable < b_s with
//     b_c − b_s ≥ δ: then ξ_canary − ξ_stable > δ.
//   - Pass when some bounds show ξ_canary < b_c and ξ_stable ≥ b_s with
//     b_c − b_s ≤ δ: then ξ_canary − ξ_stable < δ.
//
// The p-value is 2/min(E_canary, E_stable) for the best such pair of
// bounds (each E the mixture martingale behind its bound), and LogEValue
// its reciprocal's log. The sequences need no state: they are functions of
// the cumulative histograms. Assumptions: latencies within a revision are
// independent draws from one continuous distribution.
func (c Compare) latency(obs Observation, q, alpha float64) Result {
	can, stab := obs.Canary.Latency, obs.Stable.Latency
	ev := Evidence{
		Method: latencyMethod, Metric: c.Metric, Unit: c.Metric.Unit(),
		CanarySamples: can.Count(), StableSamples: stab.Count(),
		Canary:    estimateQuantile(can, q),
		Stable:    estimateQuantile(stab, q),
		Threshold: c.MaxIncrease,
		Alpha:     alpha,
	}
	ev.Effect = ev.Canary - ev.Stable
	ce, se := scanQuantile(can, q), scanQuantile(stab, q)
	// Four one-sided bounds at α/4 each: the interval covers at 1−α.
	clo, chi := ce.interval(alpha / 4)
	slo, shi := se.interval(alpha / 4)
	ev.Interval = [2]float64{clo - shi, chi - slo}
	ev.Warnings = append(sampleWarnings(ev.CanarySamples, ev.StableSamples), bucketWarning,
		"assumes latencies are independent draws from one distribution per revision")

	failLogE := bestPair(ce.lower, se.upper, c.MaxIncrease) - math.Ln2
	passLogE := bestPair(se.lower, ce.upper, -c.MaxIncrease) - math.Ln2
	ev.LogEValue = max(failLogE, 0)
	ev.PValue = pValue(ev.LogEValue)

	limit := math.Log(1 / alpha)
	name := fmt.Sprintf("p%g", 100*q)
	res := Result{Check: c.Check, Verdict: Inconclusive, Evidence: ev}
	switch {
	case failLogE >= limit:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary %s ≈ %s exceeds stable's ≈ %s by more than %s: bounds %s apart at least (p = %.3g ≤ α = %.3g)",
			name, seconds(ev.Canary), seconds(ev.Stable), seconds(c.MaxIncrease), seconds(ev.Interval[0]), ev.PValue, alpha)
	case passLogE >= limit:
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("canary %s ≈ %s is within %s of stable's ≈ %s: at most %s more (α = %.3g)",
			name, seconds(ev.Canary), seconds(c.MaxIncrease), seconds(ev.Stable), seconds(ev.Interval[1]), alpha)
	default:
		res.Reason = fmt.Sprintf("not yet conclusive: canary %s ≈ %s (%d requests), stable ≈ %s (%d), tolerance %s, difference in [%s, %s]",
			name, seconds(ev.Canary), ev.CanarySamples, seconds(ev.Stable), ev.StableSamples, seconds(c.MaxIncrease),
			seconds(ev.Interval[0]), seconds(ev.Interval[1]))
	}
	return res
}

// bestPair returns the largest min(o.logE, i.logE) over pairs with
// i.bound ≤ o.bound − gap; both lists ascend by bound. It returns 0 when
// no pair qualifies.
func bestPair(outer, inner []boundEvidence, gap float64) float64 {
	best, prefix := 0.0, math.Inf(-1)
	j := 0
	for _, o := range outer {
		for j < len(inner) && inner[j].bound <= o.bound-gap {
			prefix = max(prefix, inner[j].logE)
			j++
		}
		best = max(best, min(o.logE, prefix))
	}
	return best
}

// estimateQuantile interpolates the q-quantile inside its bucket, in
// seconds, as the router's Histogram.Quantile does; 0 for no data.
func estimateQuantile(h Histogram, q float64) float64 {
	total := float64(h.Count())
	if total == 0 || len(h.Bounds) != len(h.Counts) {
		return 0
	}
	rank := q * total
	var cum float64
	for i, c := range h.Counts {
		if c == 0 || cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		lower := 0.0
		if i > 0 {
			lower = h.upper(i - 1)
		}
		upper := h.upper(i)
		if math.IsInf(upper, 1) {
			return lower
		}
		return lower + (rank-cum)/float64(c)*(upper-lower)
	}
	return 0
}

// seconds prints a latency in seconds as a duration.
func seconds(s float64) string {
	switch {
	case math.IsInf(s, 1):
		return "∞"
	case math.IsInf(s, -1):
		return "-∞"
	}
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}
