package judge

import "math"

// The error-rate comparison is a sequential two-sample test for Bernoulli
// rates that handles a tolerance δ and never needs a known baseline:
//
//	H0 (fail side): p_canary ≤ p_stable + δ
//	H0 (pass side): p_canary ≥ p_stable + δ
//
// Evidence arrives in blocks: the requests each revision completed between
// two looks. For a block with n_c canary and n_s stable requests and an
// alternative (q_c, q_s) chosen from earlier blocks only, the block's
// e-value is the likelihood ratio of (q_c, q_s) against one null point
// (r+δ, r):
//
//	E = (q_c/r_c)^x_c ((1−q_c)/(1−r_c))^(n_c−x_c) · (q_s/r)^x_s ((1−q_s)/(1−r))^(n_s−x_s)
//
// with r_c = r+δ and r the root of
//
//	n_c (q_c − r_c)/(r_c(1−r_c)) + n_s (q_s − r)/(r(1−r)) = 0.
//
// That r is the reverse information projection of the alternative onto
// the null (Grünwald, de Heide & Koolen 2024, "Safe testing", JRSS-B 86(5);
// for two-sample Bernoulli blocks with δ = 0 it is Turner, Ly & Grünwald
// 2024, "Generic e-values for exact sequential k-sample tests that allow
// for optional stopping", Stat. Probab. Lett. 205). The extension to δ ≠ 0
// is ours, and short: for a null point (p+δ, p), ln E_p[E] is a sum of
// logs of functions affine in p, so concave; it is 0 at p = r, and its
// derivative there is the left side above, 0. So E_p[E] ≤ 1 for every p on
// the boundary; and for q_c > r_c (fail side) E_p[E] only falls as p_c
// moves into the null below the boundary (for q_c < r_c, pass side, above
// it). So E is an e-value for the whole composite null, with no nuisance
// parameter to pay for, and the product of the blocks' e-values is a
// nonnegative supermartingale under every null point: by Ville's
// inequality P(∃ look: Π E ≥ 1/α) ≤ α. Looking every second, or stopping
// whenever, does not raise the false-fail rate above α.
//
// The fail side does not bet on one alternative but on several at once,
// and averages them: for each bet k it keeps the running product Π E_k of
// its blocks' e-values, and its evidence is (1/K) Σ_k Π E_k. Each product
// is a test supermartingale under every null point, so their average is
// one too (Ramdas, Grünwald, Vovk & Shafer 2023, "Game-theoretic
// statistics and safe anytime-valid inference", Statist. Sci. 38(4), §4:
// a mixture of test martingales with fixed weights is a test martingale),
// and Ville's inequality holds for it as for each. The bets, each made
// from the counts before the block only:
//
//   - the plug-in (Kelly) bet q_s = (x_s+½)/(n_s+1), q_c = (x_c+½)/(n_c+1)
//     (Krichevsky–Trofimov estimates), moved to the boundary q_s+δ (E = 1:
//     no bet) when the canary looks on the null side. A plug-in grows the
//     evidence at close to the rate of the best fixed bet in the long run
//     (Grünwald et al. 2024, §4), but early on, with a handful of canary
//     errors, it over- and under-bets.
//   - fixed relative alternatives q_c = ρ·q_s + δ with q_s the stable's
//     plug-in estimate, for ρ = 2, 4 and 8: "the canary fails ρ times as
//     often as the stable, beyond the tolerance". The stable's rate is
//     learnt from four times the canary's traffic, so these bets are sound
//     from the first looks, and one of them is within a factor √2 of any
//     increase from 1.4× to 11×.
//
// The average pays at most ln 4 ≈ 1.4 nats for not knowing which bet is
// best; in bench/detect it needs about 10% fewer canary requests than the
// plug-in bet alone at 1% → 2% and as many elsewhere. The pass side bets
// with the plug-in alone (a canary within tolerance is usually as good as
// the stable, which no fixed ratio describes).
//
// Assumptions: within a revision requests fail independently with a
// constant probability (no drift over the rollout other than a difference
// between revisions, which is what is tested); how many requests fall in a
// block does not depend on whether they fail (looks are taken on a clock,
// not on outcomes). Errors that arrive in bursts (a dependency outage that
// hits both revisions) violate independence; because both revisions share
// the burst the test is still centred, but its e-values are then not
// exact.

// RateState is what a comparison carries from one look to the next. The
// zero value starts a test. It is plain data; persist it as JSON if a test
// should survive a restart.
type RateState struct {
	// Canary and Stable are the error-rate test's cumulative counts at the
	// last look.
	Canary Counts `json:"canary"`
	Stable Counts `json:"stable"`
	// LogEFail and LogEPass are the running log e-values against the fail
	// side's and the pass side's null; Max* their largest values so far.
	// LogEFail is the log of the average of FailBets' e-values.
	LogEFail    float64 `json:"logEFail"`
	LogEPass    float64 `json:"logEPass"`
	MaxLogEFail float64 `json:"maxLogEFail"`
	MaxLogEPass float64 `json:"maxLogEPass"`
	// FailBets are the running log e-values of the fail side's bets: the
	// plug-in bet, then one per entry of betRatios.
	FailBets [1 + len(betRatios)]float64 `json:"failBets"`
	// Restarts counts looks at which a count went backwards (a revision's
	// counters were reset): the test went on from the new counts with the
	// evidence it had (rebase, history.go).
	Restarts int `json:"restarts,omitempty"`
	// Latency is the latency test's cut-offs and counts (latency.go).
	Latency LatencyCut `json:"latency,omitzero"`
	// History is the stable's history taken at the first look, scaled to
	// at most historyCap requests; Primed says it was taken (history.go).
	History Sample `json:"history,omitzero"`
	Primed  bool   `json:"primed,omitempty"`
}

// Counts are cumulative counts of one revision: requests, and those that
// went wrong — failed, for the error rate; were at or above a cut-off, for
// a latency.
type Counts struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
}

// before reports whether a is a possible earlier value of b.
func (a Counts) before(b Counts) bool {
	return a.Requests <= b.Requests && a.Errors <= b.Errors && b.Errors-a.Errors <= b.Requests-a.Requests
}

// betRatios are the ρ of the fail side's fixed relative bets.
var betRatios = [...]float64{2, 4, 8}

// add adds the log e-values of one block to the running e-processes: one
// per fail-side bet, one for the pass side.
func (st RateState) add(fail [1 + len(betRatios)]float64, pass float64) RateState {
	for k, v := range fail {
		st.FailBets[k] += v
	}
	st.LogEFail = logMeanExp(st.FailBets[:])
	st.LogEPass += pass
	st.MaxLogEFail = max(st.MaxLogEFail, st.LogEFail)
	st.MaxLogEPass = max(st.MaxLogEPass, st.LogEPass)
	return st
}

// logMeanExp returns ln((1/K) Σ exp(x_k)) without overflow.
func logMeanExp(xs []float64) float64 {
	top := math.Inf(-1)
	for _, x := range xs {
		top = max(top, x)
	}
	var sum float64
	for _, x := range xs {
		sum += math.Exp(x - top)
	}
	return top + math.Log(sum/float64(len(xs)))
}

// rateStep adds the block between st's counts and (canary, stable) to the
// e-processes.
func rateStep(st RateState, canary, stable Counts, bound Bound) RateState {
	if !st.Canary.before(canary) || !st.Stable.before(stable) {
		st = st.rebase()
		st.Canary, st.Stable = canary, stable
		return st
	}
	h := weighed(st.History, st.Stable.Requests)
	prior := Counts{h.Requests, h.Errors}
	fail, pass := blockLogE(st.Canary, st.Stable, canary, stable, prior, bound)
	st.Canary, st.Stable = canary, stable
	return st.add(fail, pass)
}

// blockLogE returns one block's log e-values against the fail side's null,
// one per bet, and against the pass side's. The block is the requests
// between each revision's cumulative counts past and now
// (past.before(now) holds); the bets are made from past and the stable's
// history prior alone, so they are predictable. Without a past canary
// request only the fixed-ratio bets bet, on the stable's rate.
func blockLogE(pastC, pastS, nowC, nowS, prior Counts, bound Bound) (fail [1 + len(betRatios)]float64, pass float64) {
	b := rateBlock{
		nc: float64(nowC.Requests - pastC.Requests), xc: float64(nowC.Errors - pastC.Errors),
		ns: float64(nowS.Requests - pastS.Requests), xs: float64(nowS.Errors - pastS.Errors),
		bound: bound,
	}
	stable := Counts{pastS.Requests + prior.Requests, pastS.Errors + prior.Errors}
	if stable.Requests == 0 {
		return fail, 0
	}
	var qc float64
	if pastC.Requests > 0 {
		qc = plugIn(pastC)
	}
	return b.bets(qc, plugIn(stable), pastC.Requests > 0)
}

// bets returns the block's log e-values for the fail side's bets and the
// pass side's, from the predictable estimates qc (when haveCanary) and
// qs.
func (b rateBlock) bets(qc, qs float64, haveCanary bool) (fail [1 + len(betRatios)]float64, pass float64) {
	if b.nc == 0 || b.ns == 0 {
		return fail, 0
	}
	boundary := b.bound.at(qs)
	if boundary <= 0 || boundary >= 1 {
		return fail, 0
	}
	if haveCanary {
		switch {
		case qc > boundary:
			fail[0] = b.logE(qc, qs)
		case qc < boundary:
			pass = b.logE(qc, qs)
		}
	}
	for k, rho := range betRatios {
		if alt := b.bound.at(rho * qs); alt < 1 {
			fail[1+k] = b.logE(alt, qs)
		}
	}
	return fail, pass
}

// Bound is the boundary of the fail side's null, a line in (p_stable,
// p_canary): the canary's rate may be up to Scale·p_stable + Shift. An
// absolute tolerance δ is {1, δ}; a relative one, "20% more than the
// stable", is {1.2, 0}. The zero Bound is no tolerance at all ({1, 0}).
type Bound struct {
	Scale, Shift float64
}

// Absolute is the boundary of a tolerance in the metric's unit.
func Absolute(delta float64) Bound { return Bound{1, delta} }

// Relative is the boundary of a tolerance that is a share of the stable's
// value: 0.2 lets the canary be 20% worse.
func Relative(share float64) Bound { return Bound{1 + share, 0} }

func (b Bound) scale() float64 {
	if b.Scale == 0 {
		return 1
	}
	return b.Scale
}

// at is the canary's rate on the boundary for a stable rate p.
func (b Bound) at(p float64) float64 { return b.scale()*p + b.Shift }

// plugIn is the Krichevsky–Trofimov estimate of a rate, (x+½)/(n+1).
func plugIn(c Counts) float64 {
	return (float64(c.Errors) + 0.5) / (float64(c.Requests) + 1)
}

// rateBlock is one block of requests: x errors of n on each revision,
// judged against the null boundary bound.
type rateBlock struct {
	nc, xc, ns, xs float64
	bound          Bound
}

// logE returns the log e-value of the block for the alternative (qc, qs)
// against its reverse information projection on the null boundary.
func (b rateBlock) logE(qc, qs float64) float64 {
	r := b.projection(qc, qs)
	rc := b.bound.at(r)
	return xlogy(b.xc, qc/rc) + xlogy(b.nc-b.xc, (1-qc)/(1-rc)) +
		xlogy(b.xs, qs/r) + xlogy(b.ns-b.xs, (1-qs)/(1-r))
}

// projection solves a·n_c (q_c − r_c)/(r_c(1−r_c)) + n_s (q_s − r)/(r(1−r)) = 0
// for r in the open range where r and r_c = a·r + b are rates (the
// boundary's Scale a and Shift b; a = 1, b = δ for an absolute
// tolerance). It is where the derivative of n_c·KL(q_c‖r_c) + n_s·KL(q_s‖r)
// along the boundary vanishes. The left side falls strictly in r (each
// term does, a > 0), so bisection finds the one root.
func (b rateBlock) projection(qc, qs float64) float64 {
	a, shift := b.bound.scale(), b.bound.Shift
	lo, hi := max(0, -shift/a), min(1, (1-shift)/a)
	slope := func(r float64) float64 {
		rc := a*r + shift
		return a*b.nc*(qc-rc)/(rc*(1-rc)) + b.ns*(qs-r)/(r*(1-r))
	}
	for range 100 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if slope(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// pValue turns a running maximum of a log e-value into an anytime-valid
// p-value: min(1, 1/max E).
func pValue(maxLogE float64) float64 {
	return math.Min(1, math.Exp(-maxLogE))
}
