package main

import (
	"math"
	"math/rand/v2"
)

// fixedSamples is the canary sample size of a one-sided two-proportion
// z-test at level alpha with the given power, for canary rate p1 against
// stable rate p0 with k stable requests per canary request.
func fixedSamples(p0, p1, k, alpha, power float64) float64 {
	za, zb := normalQuantile(1-alpha), normalQuantile(power)
	pbar := (p1 + k*p0) / (1 + k)
	a := za * math.Sqrt(pbar*(1-pbar)*(1+1/k))
	b := zb * math.Sqrt(p1*(1-p1)+p0*(1-p0)/k)
	return math.Ceil((a + b) * (a + b) / ((p1 - p0) * (p1 - p0)))
}

// normalQuantile is the standard normal quantile function, by bisection on
// math.Erfc (ample precision for a report).
func normalQuantile(p float64) float64 {
	lo, hi := -10.0, 10.0
	for range 100 {
		mid := (lo + hi) / 2
		if 0.5*math.Erfc(-mid/math.Sqrt2) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// slowShare is the share of a lognormal arm's requests slower than the
// stable's true p99 when the canary's latencies are scaled by factor.
func slowShare(sigma, factor float64) float64 {
	return 0.5 * math.Erfc((z99-math.Log(factor)/sigma)/math.Sqrt2)
}

// sprtRuns simulates Wald's SPRT of Bernoulli(p0) against Bernoulli(p1)
// with errors α and β, n times under H1 (requests fail with p1), and
// returns each run's stopping time: the requests until the log likelihood
// ratio crossed ln((1−β)/α) (reject p0) or ln(β/(1−α)) (accept it). Its
// median is the SPRT's median sample size, which Wald's E[N] (a mean,
// ignoring the overshoot) does not give.
func sprtRuns(p0, p1, alpha, beta float64, n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x73707274))
	up, down := math.Log((1-beta)/alpha), math.Log(beta/(1-alpha))
	fail, pass := math.Log(p1/p0), math.Log((1-p1)/(1-p0))
	out := make([]float64, n)
	for i := range out {
		llr, k := 0.0, 0
		for llr < up && llr > down {
			k++
			if rng.Float64() < p1 {
				llr += fail
			} else {
				llr += pass
			}
		}
		out[i] = float64(k)
	}
	return out
}
