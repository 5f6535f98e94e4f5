// Package stats holds the few summaries the simulation benchmarks under
// bench/ report: quantiles, the mean and the median with 95% intervals,
// exact binomial intervals for shares, and the sample sizes a detection
// benchmark compares against (Wald's SPRT, the growth-rate-optimal
// two-sample e-value).
package stats

import (
	"fmt"
	"math"
	"slices"
)

// Percentile returns the p-quantile (nearest rank) of xs, NaN for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Mean returns the mean of xs and the half-width of its 95% interval
// (1.96 standard errors: the sample sizes here are hundreds or more), NaN
// for none.
func Mean(xs []float64) (mean, half float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, math.Inf(1)
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / float64(len(xs)-1))
	return mean, 1.96 * sd / math.Sqrt(float64(len(xs)))
}

// Median returns the median of xs with a distribution-free 95% interval:
// the order statistics whose ranks bound the median with probability
// ≥ 95% (the binomial(n, ½) quantiles), NaN for none.
func Median(xs []float64) (med, lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med = Percentile(s, 0.5)
	// The largest k with P(B ≤ k−1) ≤ 2.5%, B ~ Binomial(n, ½): then
	// [s_(k), s_(n−k+1)] covers the median with probability ≥ 95%.
	k := 0
	for k < n/2 && BinomCDF(k, n, 0.5) <= 0.025 {
		k++
	}
	lo, hi = s[max(k-1, 0)], s[min(n-k, n-1)]
	return med, lo, hi
}

// ClopperPearson returns the exact two-sided 95% interval for k successes
// in n trials.
func ClopperPearson(k, n int) (lo, hi float64) {
	const a = 0.025
	if n == 0 {
		return 0, 1
	}
	if k > 0 {
		lo = solve(func(p float64) float64 { return 1 - BinomCDF(k-1, n, p) }, a)
	}
	hi = 1
	if k < n {
		hi = solve(func(p float64) float64 { return 1 - BinomCDF(k, n, p) }, 1-a)
	}
	return lo, hi
}

// Share prints k of n with its exact 95% interval.
func Share(k, n int) string {
	if n == 0 {
		return "—"
	}
	lo, hi := ClopperPearson(k, n)
	return fmt.Sprintf("%d/%d = %.2f%% [%.2f%%, %.2f%%]", k, n, 100*float64(k)/float64(n), 100*lo, 100*hi)
}

// solve finds p in [0, 1] with f(p) = target for f increasing in p.
func solve(f func(float64) float64, target float64) float64 {
	lo, hi := 0.0, 1.0
	for range 60 {
		mid := (lo + hi) / 2
		if f(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// BinomCDF returns P(X ≤ k) for X ~ Binomial(n, p).
func BinomCDF(k, n int, p float64) float64 {
	if k < 0 {
		return 0
	}
	if p <= 0 || k >= n {
		return 1
	}
	if p >= 1 {
		return 0
	}
	ln, _ := math.Lgamma(float64(n + 1))
	var sum float64
	for i := 0; i <= k; i++ {
		li, _ := math.Lgamma(float64(i + 1))
		lni, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(ln - li - lni + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return min(sum, 1)
}

// SPRTSamples is Wald's approximation of the SPRT's expected sample size
// under H1 for Bernoulli(p0) against Bernoulli(p1) with errors α and β:
//
//	E1[N] ≈ ((1−β) ln((1−β)/α) + β ln(β/(1−α))) / KL(p1‖p0),
//	KL(p1‖p0) = p1 ln(p1/p0) + (1−p1) ln((1−p1)/(1−p0)).
//
// It knows p0 (the baseline) and p1 exactly — a lower bound for any test
// that must learn them (Wald & Wolfowitz 1948 optimality).
func SPRTSamples(p0, p1, alpha, beta float64) float64 {
	kl := p1*math.Log(p1/p0) + (1-p1)*math.Log((1-p1)/(1-p0))
	num := (1-beta)*math.Log((1-beta)/alpha) + beta*math.Log(beta/(1-alpha))
	return num / kl
}

// GROSamples is ln(1/alpha) / g, g the expected log growth per canary
// request of the growth-rate-optimal two-sample e-value for canary rate p1
// against stable rate p0 with k stable requests per canary request: the
// likelihood ratio of (p1, p0) against its reverse information projection
// on "canary ≤ stable", the null point (r, r) with r = (p1 + k p0)/(1+k)
// (Grünwald, de Heide & Koolen 2024), so g = KL(p1‖r) + k KL(p0‖r). It is
// the canary requests that e-process needs, in the mean and ignoring
// overshoot, when it knows both rates: what the judge's e-processes
// approach as their bets learn the rates.
func GROSamples(p0, p1, k, alpha float64) float64 {
	kl := func(a, b float64) float64 { return a*math.Log(a/b) + (1-a)*math.Log((1-a)/(1-b)) }
	r := (p1 + k*p0) / (1 + k)
	return math.Log(1/alpha) / (kl(p1, r) + k*kl(p0, r))
}
