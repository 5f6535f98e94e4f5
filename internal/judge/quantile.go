package judge

import "math"

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
// candidate bounds below it (with the log e-value that ξ ≥ bound) and
// above it (that ξ < bound), each list ascending by bound.
type quantileEvidence struct {
	lower, upper []boundEvidence
}

// boundEvidence is a candidate bound and the log e-value that the quantile
// lies beyond it.
type boundEvidence struct {
	bound, logE float64
}

// scanQuantile evaluates the mixtures at the bounds of every non-empty
// bucket of h: a bound with C(bound) < nq is a lower candidate, scored by
// ln M⁻(C(bound)), one with C(bound) > nq an upper candidate, scored by
// ln M⁺. The lower bound of a non-empty bucket is the largest bound with
// its count (the best candidate for ξ ≥ b), the upper bound the smallest
// with the next count (the best for ξ < b).
func scanQuantile(h Histogram, q float64) quantileEvidence {
	var out quantileEvidence
	n := float64(h.Count())
	if n == 0 || len(h.Bounds) != len(h.Counts) {
		return out
	}
	lower, upper := newSideMixture(q, true), newSideMixture(q, false)
	at := func(bound, count float64) {
		switch {
		case math.IsInf(bound, 1) || count == n*q:
		case count < n*q:
			out.lower = append(out.lower, boundEvidence{bound, lower.logM(count, n)})
		default:
			out.upper = append(out.upper, boundEvidence{bound, upper.logM(count, n)})
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
// the data bound nothing yet.
func (e quantileEvidence) interval(alpha float64) (lo, hi float64) {
	limit := math.Log(1 / alpha)
	lo, hi = 0, math.Inf(1)
	for _, b := range e.lower {
		if b.logE >= limit {
			lo = max(lo, b.bound)
		}
	}
	for _, b := range e.upper {
		if b.logE >= limit {
			hi = min(hi, b.bound)
		}
	}
	return lo, hi
}
