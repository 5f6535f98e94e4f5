// Package stats holds the few summaries the simulation benchmarks under
// bench/ report: quantiles, the mean and the median with 95% intervals,
// and exact binomial intervals for shares.
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
