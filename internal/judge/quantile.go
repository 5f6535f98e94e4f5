package judge

import "math"

// Quantile confidence sequences, after Howard & Ramdas (2022), "Sequential
// estimation of quantiles with applications to A/B-testing and best-arm
// identification", Bernoulli 28(3), §2: for the true q-quantile ξ of a
// continuous distribution, S_n = #{X_i ≤ ξ} is Binomial(n, q) with q
// known, so a confidence sequence for that binomial count turns into one
// for ξ that holds at every n at once. We use the beta-binomial mixture
// boundary (their Theorem 1 with the conjugate mixture of Howard et al.
// 2021): with M_n(s) the Beta(cq, c(1−q)) mixture martingale of mixture.go
// at p = q, with probability ≥ 1−α, for every n, S_n lies where
// M_n < 1/α. Hence, with C(b) = #{X_i < b} read off a histogram:
//
//   - ξ ≥ b for every bound b with C(b) < nq and M_n(C(b)) ≥ 1/α,
//   - ξ < b for every bound b with C(b) > nq and M_n(C(b)) ≥ 1/α.
//
// Histogram counts are exact at bucket bounds, so the bounds are bucket
// bounds: never tighter than a bucket (12.5% of its value in the router's
// layout), and exact, not interpolated.

// quantilePrior is the concentration c of the Beta(cq, c(1−q)) mixture:
// small c spends the boundary's tightness on small n, large c on large n.
// 200 was chosen by simulation (bench/detect) for p99 shifts of 20-100%.
const quantilePrior = 200

// quantileBounds is a confidence interval for a quantile: lo ≤ ξ < hi, in
// seconds.
type quantileBounds struct {
	lo, hi float64
}

// quantileScan evaluates the mixture at the bounds of every non-empty
// bucket of h and calls visit(bound, logM, below) for each, where below
// says whether C(bound) < nq. The lower bound of a non-empty bucket is the
// largest bound with its count (the best candidate for ξ ≥ b), the upper
// bound the smallest with the next count (the best candidate for ξ < b).
func quantileScan(h Histogram, q float64, visit func(bound, logM float64, below bool)) {
	n := float64(h.Count())
	if n == 0 || len(h.Bounds) != len(h.Counts) {
		return
	}
	mix := betaMixture{quantilePrior * q, quantilePrior * (1 - q)}
	var cum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if i > 0 {
			visitBound(mix, h.upper(i-1), cum, n, q, visit)
		}
		cum += float64(c)
		visitBound(mix, h.upper(i), cum, n, q, visit)
	}
}

func visitBound(mix betaMixture, bound, count, n, q float64, visit func(bound, logM float64, below bool)) {
	if math.IsInf(bound, 1) || count == n*q {
		return
	}
	visit(bound, mix.logM(count, n, q), count < n*q)
}

// quantileInterval returns the confidence interval for h's q-quantile at
// level 1−alpha: lo = 0 and hi = +Inf where the data bound nothing yet.
func quantileInterval(h Histogram, q, alpha float64) quantileBounds {
	limit := math.Log(1 / alpha)
	out := quantileBounds{lo: 0, hi: math.Inf(1)}
	quantileScan(h, q, func(bound, logM float64, below bool) {
		if logM < limit {
			return
		}
		if below {
			out.lo = max(out.lo, bound)
		} else {
			out.hi = min(out.hi, bound)
		}
	})
	return out
}

// boundEvidence is a candidate bound and the log e-value that the quantile
// lies beyond it.
type boundEvidence struct {
	bound, logE float64
}

// quantileEvidence lists one arm's candidate bounds in increasing order:
// with below, the evidence that ξ ≥ bound, else that ξ < bound.
func quantileEvidence(h Histogram, q float64, below bool) []boundEvidence {
	var out []boundEvidence
	quantileScan(h, q, func(bound, logM float64, isBelow bool) {
		if isBelow == below && logM > 0 {
			out = append(out, boundEvidence{bound, logM})
		}
	})
	return out
}
