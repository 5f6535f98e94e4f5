package main

import (
	"math"
	"slices"
)

// percentile returns the p-quantile (nearest rank) of xs, NaN for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// clopperPearson returns the exact two-sided 95% interval for k successes
// in n trials.
func clopperPearson(k, n int) (lo, hi float64) {
	const a = 0.025
	if k > 0 {
		// lo: P(X ≥ k | lo) = a.
		lo = solve(func(p float64) float64 { return 1 - binomCDF(k-1, n, p) }, a)
	}
	hi = 1
	if k < n {
		// hi: P(X ≤ k | hi) = a; the CDF falls in p.
		hi = solve(func(p float64) float64 { return 1 - binomCDF(k, n, p) }, 1-a)
	}
	return lo, hi
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

// binomCDF returns P(X ≤ k) for X ~ Binomial(n, p).
func binomCDF(k, n int, p float64) float64 {
	if p <= 0 {
		return 1
	}
	if p >= 1 {
		if k >= n {
			return 1
		}
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
