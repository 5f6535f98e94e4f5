package judge

import "math"

// The confidence sequences here invert conjugate mixture martingales
// (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021, "Time-uniform,
// nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2),
// §3 "conjugate mixtures"). For a Bernoulli(p) stream with S successes in
// n trials, mixing the likelihood ratio over θ ~ Beta(a, b) gives
//
//	M_n(p) = B(a+S, b+n−S) / B(a, b) / (p^S (1−p)^(n−S)),
//
// a nonnegative martingale with mean 1 under p. By Ville's inequality
// P(∃n: M_n(p) ≥ 1/α) ≤ α, so {p : M_n(p) < 1/α} covers p at every n at
// once with probability ≥ 1−α. log M is convex in p (and in S), so each
// set is an interval found by bisection.

// logBeta returns ln B(a, b).
func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// xlogy returns x·ln(y) with 0·ln(0) = 0.
func xlogy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(y)
}

// betaMixture is the Beta(a, b) mixture for a Bernoulli stream.
type betaMixture struct{ a, b float64 }

// jeffreys spreads its mass over all rates, with enough of it near 0 for
// rates of 0.1%.
var jeffreys = betaMixture{0.5, 0.5}

// logM returns ln M_n(p) for s successes in n trials.
func (m betaMixture) logM(s, n, p float64) float64 {
	return logBeta(m.a+s, m.b+n-s) - logBeta(m.a, m.b) - xlogy(s, p) - xlogy(n-s, 1-p)
}

// interval returns the confidence interval for p after s successes in n
// trials, at level 1−alpha, uniformly over n.
func (m betaMixture) interval(s, n, alpha float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	// ln M(p) − ln(1/α) = g(p) − limit with g(p) = −s ln p − (n−s) ln(1−p),
	// convex with its minimum at s/n; the mixture term is computed once.
	limit := math.Log(1/alpha) - (logBeta(m.a+s, m.b+n-s) - logBeta(m.a, m.b))
	f := func(p float64) float64 { return -xlogy(s, p) - xlogy(n-s, 1-p) - limit }
	df := func(p float64) float64 { return -s/p + (n-s)/(1-p) }
	hat := s / n
	lo, hi = 0, 1
	if s > 0 && f(0) > 0 {
		lo = convexEdge(f, df, hat, 0)
	}
	if s < n && f(1) > 0 {
		hi = convexEdge(f, df, hat, 1)
	}
	return lo, hi
}

// convexEdge finds where a convex f, negative at inside, crosses zero
// between inside and the end, where it is positive (or infinite). Newton's
// method from outside stays outside (the tangent lies below a convex f),
// so the answer errs on the wide side; a start is found by halving the
// distance to the end.
func convexEdge(f, df func(float64) float64, inside, end float64) float64 {
	p := inside
	for step := (end - inside) / 2; ; step /= 2 {
		p = end - step
		if v := f(p); v > 0 || math.Abs(step) < 1e-300 {
			break
		}
	}
	for range 100 {
		v := f(p)
		next := p - v/df(p)
		if v < 1e-9 || next == p {
			break
		}
		p = next
	}
	return p
}

// bisect finds where inside changes on [left, right], one end inside and
// the other not (insideLeft says which), and returns the outside end of the
// final bracket, so an interval built from it errs on the wide side.
func bisect(left, right float64, inside func(float64) bool, insideLeft bool) float64 {
	for range 64 {
		mid := (left + right) / 2
		if mid == left || mid == right || right-left <= 1e-9*max(math.Abs(left), math.Abs(right)) {
			break
		}
		if inside(mid) == insideLeft {
			left = mid
		} else {
			right = mid
		}
	}
	if insideLeft {
		return right
	}
	return left
}

// gammaPoisson is the Gamma(shape a, rate b) mixture for a Poisson counting
// process: N events in t seconds. M_t(λ) = b^a Γ(a+N) / (Γ(a) (b+t)^(a+N))
// / (λ^N e^(−λt)) is a martingale under rate λ (Howard et al. 2021, the
// same conjugate-mixture construction).
type gammaPoisson struct{ a, b float64 }

func (m gammaPoisson) logM(n, t, lambda float64) float64 {
	ga, _ := math.Lgamma(m.a)
	gan, _ := math.Lgamma(m.a + n)
	return m.a*math.Log(m.b) + gan - ga - (m.a+n)*math.Log(m.b+t) - xlogy(n, lambda) + lambda*t
}

// interval returns the confidence interval for λ after n events in t > 0
// seconds, at level 1−alpha, uniformly over t.
func (m gammaPoisson) interval(n, t, alpha float64) (lo, hi float64) {
	limit := math.Log(1 / alpha)
	inside := func(l float64) bool { return m.logM(n, t, l) < limit }
	hat := n / t
	if hat == 0 {
		hat = 1e-9
	}
	if !inside(0) {
		lo = bisect(0, hat, inside, false)
	}
	top := 2*hat + 1
	for inside(top) {
		top *= 2
	}
	hi = bisect(hat, top, inside, true)
	return lo, hi
}
