package judge

import (
	"math"
	"sort"
)

// Quantile confidence sequences, after Howard & Ramdas (2022), "Sequential
// estimation of quantiles with applications to A/B-testing and best-arm
// identification", Bernoulli 28(3), §2: for the true q-quantile ξ of a
// continuous distribution, S_n = #{X_i ≤ ξ} is Binomial(n, q) with q
// known, so a confidence sequence for that binomial count is one for ξ,
// holding at every n at once.
//
// The boundary is a one-sided mixture of likelihood ratios (Robbins 1970;
// Howard, Ramdas, McAuliffe & Sekhon 2021, Ann. Statist. 49(2), §3): for
// alternatives θ_k = logistic(logit q ∓ d_k) on one side of q,
//
//	M⁻_n(s) = (1/K) Σ_k (θ_k/q)^s ((1−θ_k)/(1−q))^(n−s)   (θ_k < q)
//
// is a martingale at s = S_n, falling in s; M⁺ (θ_k > q) rises in s. By
// Ville's inequality M⁻_n(S_n) < 1/α at every n with probability ≥ 1−α,
// and likewise M⁺. With C(b) = #{X_i < b} read off a histogram:
//
//   - ξ ≥ b for every bound b with M⁻_n(C(b)) ≥ 1/α (if ξ < b then
//     S_n ≤ C(b), so M⁻_n(S_n) ≥ M⁻_n(C(b)));
//   - ξ < b for every bound b with M⁺_n(C(b)) ≥ 1/α.
//
// The offsets d_k double from 1/8 to 8 (log-odds), so some θ_k is within
// a factor √2 of any alternative that matters, for ln K ≈ 2 nats.
//
// Histogram counts are exact at bucket bounds, so the bounds are bucket
// bounds: never tighter than a bucket (up to 12.5% of its value in the
// router's layout), and exact, not interpolated.

// oddsOffsets are the d_k above.
var oddsOffsets = [...]float64{0.125, 0.25, 0.5, 1, 2, 4, 8}

// sideMixture is M⁻ or M⁺ for one q: per alternative, ln(θ/q) and
// ln((1−θ)/(1−q)).
type sideMixture struct {
	success, failure [len(oddsOffsets)]float64
}

func newSideMixture(q float64, below bool) sideMixture {
	var m sideMixture
	logit := math.Log(q / (1 - q))
	for k, d := range oddsOffsets {
		if below {
			d = -d
		}
		theta := 1 / (1 + math.Exp(-(logit + d)))
		m.success[k] = math.Log(theta / q)
		m.failure[k] = math.Log((1 - theta) / (1 - q))
	}
	return m
}

// logM returns ln M_n(s).
func (m sideMixture) logM(s, n float64) float64 {
	var terms [len(oddsOffsets)]float64
	top := math.Inf(-1)
	for k := range terms {
		terms[k] = s*m.success[k] + (n-s)*m.failure[k]
		top = max(top, terms[k])
	}
	var sum float64
	for _, t := range terms {
		sum += math.Exp(t - top)
	}
	return top + math.Log(sum/float64(len(terms)))
}

// quantileEvidence is what one histogram shows about its q-quantile: the
// candidate bounds below it (for "ξ ≥ bound") and above it (for "ξ <
// bound"), each list ascending by bound, with the count C(bound) that
// scores it. ln M⁻ falls as the count grows and ln M⁺ rises, so along
// each list the evidence is monotone and interval finds its ends by
// bisection: a look costs a few mixture evaluations, not one per bucket.
type quantileEvidence struct {
	n            float64
	below, above sideMixture
	lower, upper []boundCount
}

// boundCount is a candidate bound and the count of observations below it.
type boundCount struct {
	bound, count float64
}

// scanQuantile lists the bounds of every non-empty bucket of h: a bound
// with C(bound) < nq is a lower candidate, scored by ln M⁻(C(bound)), one
// with C(bound) > nq an upper candidate, scored by ln M⁺. The lower bound
// of a non-empty bucket is the largest bound with its count (the best
// candidate for ξ ≥ b), the upper bound the smallest with the next count
// (the best for ξ < b).
func scanQuantile(h Histogram, q float64) quantileEvidence {
	out := quantileEvidence{n: float64(h.Count())}
	if out.n == 0 || len(h.Bounds) != len(h.Counts) {
		return out
	}
	out.below, out.above = newSideMixture(q, true), newSideMixture(q, false)
	at := func(bound, count float64) {
		switch {
		case math.IsInf(bound, 1) || count == out.n*q:
		case count < out.n*q:
			out.lower = append(out.lower, boundCount{bound, count})
		default:
			out.upper = append(out.upper, boundCount{bound, count})
		}
	}
	var cum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if i > 0 {
			at(h.upper(i-1), cum)
		}
		cum += float64(c)
		at(h.upper(i), cum)
	}
	return out
}

// interval returns bounds lo ≤ ξ < hi, each holding at every look with
// probability ≥ 1−alpha (so both ≥ 1−2·alpha): lo = 0 and hi = +Inf where
// the data bound nothing yet. lo is the largest lower candidate with ln
// M⁻ ≥ ln(1/α) (those form a prefix of the list), hi the smallest upper
// candidate with ln M⁺ ≥ ln(1/α) (a suffix).
func (e quantileEvidence) interval(alpha float64) (lo, hi float64) {
	limit := math.Log(1 / alpha)
	lo, hi = 0, math.Inf(1)
	if i := sort.Search(len(e.lower), func(i int) bool { return e.below.logM(e.lower[i].count, e.n) < limit }); i > 0 {
		lo = e.lower[i-1].bound
	}
	if j := sort.Search(len(e.upper), func(j int) bool { return e.above.logM(e.upper[j].count, e.n) >= limit }); j < len(e.upper) {
		hi = e.upper[j].bound
	}
	return lo, hi
}
