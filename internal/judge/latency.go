package judge

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// latencyMethod is the latency comparison's name and sources.
var latencyMethod = Method{
	Name: "two-sample e-process on the shares of requests slower than a predictable cut-off near the stable's quantile " +
		"(reverse information projection, plug-in bets); interval from quantile confidence sequences",
	Citation: "Turner, Ly & Grünwald 2024 (Stat. Probab. Lett. 205); Grünwald, de Heide & Koolen 2024 (JRSS-B 86(5)); " +
		"Ramdas, Grünwald, Vovk & Shafer 2023 (Statist. Sci. 38(4)); Howard & Ramdas 2022 (Bernoulli 28(3))",
}

// bucketWarning says what reading latencies from a histogram costs.
const bucketWarning = "cut-offs and quantile bounds are histogram bucket bounds (buckets up to 12.5% wide), not exact latencies"

// The latency comparison reduces "the canary's q-quantile is larger than
// the stable's by more than δ" to a comparison of two rates, and tests it
// with the error rate's e-process (rate.go).
//
// At every look the test fixes a cut-off c: the router bucket bound
// nearest the stable's estimated q-quantile, from the stable's cumulative
// histogram at that look together with its history (history.go), once
// those hold at least 1/(1−q) observations (100 for p99: fewer say too
// little about where the quantile lies for the cut-off to be read as
// "near" it). It also fixes c⁺, the smallest bucket bound
// ≥ c+δ, and c⁻, the largest ≤ c+δ (both c when δ = 0). The requests of
// the next block (those that arrive before the next look) are then scored
// as "slow" when at or above the cut-off: stable requests at c, canary
// requests at c⁺ for the fail side and at c⁻ for the pass side. Because the
// cut-offs and the bets depend only on data before the block, each
// block's e-value is conditionally valid, the running product is a
// nonnegative supermartingale under the null, and Ville's inequality
// bounds the false-fail probability over the whole rollout by α (Ramdas,
// Grünwald, Vovk & Shafer 2023, "Game-theoretic statistics and safe
// anytime-valid inference", Statist. Sci. 38(4), §3–4: a predictable
// choice of bet, here of the statistic too, keeps a test martingale a test
// martingale). At the first look the cut-off comes from the history
// alone, so the requests up to it are scored too; without a history the
// first look only fixes a cut-off.
//
// What is tested, with S and C a stable and a canary request's latency:
//
//	H0 (fail side): P(C ≥ c⁺) ≤ P(S ≥ c)   at every cut-off c used
//	H0 (pass side): P(C ≥ c⁻) ≥ P(S ≥ c)
//
// Fail rejects the first: at a cut-off near the stable's q-quantile a
// larger share of canary requests is slower than c+δ than of stable
// requests is slower than c. That is the reading of "latencyP99 rose by
// more than δ" the data can test quickly, and it is exact at c = ξ_s, the
// stable's true quantile: P(S ≥ ξ_s) = 1−q, and P(C ≥ ξ_s+δ) > 1−q holds
// exactly when the canary's quantile ξ_c is above ξ_s+δ. Away from ξ_s (c
// is an estimate, read to a bucket bound) it is implied by the plainer
// null "the canary is not slower than the stable by more than δ anywhere":
// C ≤ S+δ stochastically gives P(C ≥ c⁺) ≤ P(C ≥ c+δ) ≤ P(S ≥ c) for
// every c, so an A/A rollout (C and S identically distributed) fails with
// probability ≤ α whatever cut-offs are chosen. What it does not promise:
// a canary whose distribution crosses the stable's near its quantile —
// slower at c, no slower at ξ_s — can fail although its q-quantile did not
// rise by δ. Likewise Pass says the canary's share above c⁻ is lower than
// the stable's above c.
//
// Compared with confidence sequences for each revision's quantile (kept
// for the reported interval), the test needs no bound on either quantile:
// it compares two rates of about 1−q directly and pools the evidence of
// every block, which is what lets it detect a p99 regression within a
// few hundred canary requests rather than thousands.
//
// Assumptions: latencies within a revision are independent draws from one
// distribution; the histograms of both revisions keep one bucket layout.

// LatencyCut is what the latency comparison carries from one look to the
// next: the cut-offs fixed at the last look and each revision's cumulative
// counts there (Requests: observations in the histogram; Errors: those at
// or above the cut-off). The zero value has no cut-off yet.
type LatencyCut struct {
	// Cut is c, a bucket bound of the stable's histogram.
	Cut time.Duration `json:"cut"`
	// FailCut is c⁺ and PassCut c⁻ (bucket bounds), 0 when no finite
	// bucket bound qualifies.
	FailCut time.Duration `json:"failCut,omitempty"`
	PassCut time.Duration `json:"passCut,omitempty"`
	// Stable counts stable requests at or above Cut; CanaryFail and
	// CanaryPass canary requests at or above FailCut and PassCut.
	Stable     Counts `json:"stable"`
	CanaryFail Counts `json:"canaryFail"`
	CanaryPass Counts `json:"canaryPass"`
	// History is the stable's history at Cut (history.go): what the bets
	// know of the stable's share above it before the block.
	History Counts `json:"history,omitzero"`
}

// latency compares the q-quantiles of the two revisions' latencies (see
// above). The reported interval is the difference of anytime-valid
// confidence sequences for each revision's q-quantile (quantile.go), at α/4
// per bound so that it covers at level 1−α; it is coarser than the test
// and does not decide the verdict.
func (c Compare) latency(state RateState, obs Observation, q, alpha float64, first bool) (RateState, Result) {
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
	clo, chi := ce.interval(alpha / 4)
	slo, shi := se.interval(alpha / 4)
	ev.Interval = [2]float64{clo - shi, chi - slo}
	ev.Warnings = append(sampleWarnings(ev.CanarySamples, ev.StableSamples), bucketWarning,
		"assumes latencies are independent draws from one distribution per revision")

	restarts := state.Restarts
	state = latencyStep(state, can, stab, q, c.MaxIncrease, first)
	if state.Restarts > restarts {
		ev.Warnings = append(ev.Warnings, "a revision's histogram went backwards or changed its layout (restarted?); the requests since the last look were not scored, the evidence so far stands")
	}
	ev.LogEValue = state.LogEFail
	ev.PValue = pValue(state.MaxLogEFail)
	ev.HistorySamples = min(state.History.Latency.Count(), room(ev.StableSamples))

	cut := state.Latency
	limit := math.Log(1 / alpha)
	name := fmt.Sprintf("p%g", 100*q)
	share := func(n Counts) string {
		return fmt.Sprintf("%.3g%% (%d/%d)", 100*ratio(n.Errors, n.Requests), n.Errors, n.Requests)
	}
	slow := fmt.Sprintf("canary requests at or above %s: %s; stable at or above %s (≈ its %s): %s",
		seconds(cut.FailCut.Seconds()), share(cut.CanaryFail), seconds(cut.Cut.Seconds()), name, share(cut.Stable))
	res := Result{Check: c.Check, Verdict: Inconclusive, Evidence: ev}
	switch {
	case state.MaxLogEFail >= limit:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary %s ≈ %s exceeds stable's ≈ %s by more than %s: more of its requests are slow (%s; e-value %.3g ≥ 1/α = %.3g)",
			name, seconds(ev.Canary), seconds(ev.Stable), seconds(c.MaxIncrease), slow, math.Exp(state.MaxLogEFail), 1/alpha)
	case state.MaxLogEPass >= limit:
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("canary %s ≈ %s is within %s of stable's ≈ %s: fewer of its requests are slow (canary at or above %s: %s; stable at or above %s: %s; e-value %.3g ≥ 1/α = %.3g)",
			name, seconds(ev.Canary), seconds(c.MaxIncrease), seconds(ev.Stable), seconds(cut.PassCut.Seconds()), share(cut.CanaryPass),
			seconds(cut.Cut.Seconds()), share(cut.Stable), math.Exp(state.MaxLogEPass), 1/alpha)
	case cut.Cut == 0:
		res.Reason = fmt.Sprintf("not yet conclusive: too few stable latencies to fix a cut-off near their %s (canary %d requests, stable %d; %.0f needed)",
			name, ev.CanarySamples, ev.StableSamples, math.Ceil(1/(1-q)))
	default:
		res.Reason = fmt.Sprintf("not yet conclusive: canary %s ≈ %s, stable ≈ %s, tolerance %s, difference in [%s, %s]; %s; e-value %.3g of the %.3g needed to fail",
			name, seconds(ev.Canary), seconds(ev.Stable), seconds(c.MaxIncrease), seconds(ev.Interval[0]), seconds(ev.Interval[1]),
			slow, math.Exp(state.MaxLogEFail), 1/alpha)
	}
	return state, res
}

// latencyStep scores the block since the last look at the cut-offs fixed
// then, and fixes the cut-offs for the next block. At the first look
// (first) the cut-offs come from the stable's history alone, so the first
// block — every request up to this look — is scored too.
func latencyStep(st RateState, can, stab Histogram, q, delta float64, first bool) RateState {
	if len(can.Bounds) != len(can.Counts) || len(stab.Bounds) != len(stab.Counts) {
		return st
	}
	nowC, nowS := can.Count(), stab.Count()
	none := func(h Histogram) Histogram { return Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts))} }
	if first && st.Latency.Cut == 0 {
		hist := merged(st.History.Latency, none(stab)) // the history in stab's layout, or empty
		st.Latency = cutsAt(none(can), none(stab), hist, q, delta)
	}
	if cut := st.Latency; cut.Cut != 0 {
		s, okS := atOrAbove(stab, cut.Cut, nowS)
		cf, okF := atOrAbove(can, cut.FailCut, nowC)
		cp, okP := atOrAbove(can, cut.PassCut, nowC)
		if !okS || !okF || !okP || !cut.Stable.before(s) || !cut.CanaryFail.before(cf) || !cut.CanaryPass.before(cp) {
			st = st.rebase()
		} else {
			var fail [1 + len(betRatios)]float64
			var pass float64
			if cut.FailCut != 0 {
				fail, _ = blockLogE(cut.CanaryFail, cut.Stable, cf, s, cut.History, Bound{})
			}
			if cut.PassCut != 0 {
				_, pass = blockLogE(cut.CanaryPass, cut.Stable, cp, s, cut.History, Bound{})
			}
			st = st.add(fail, pass)
		}
	}
	hist := merged(weighed(st.History, nowS).Latency, none(stab))
	st.Latency = cutsAt(can, stab, hist, q, delta)
	return st
}

// cutsAt fixes the cut-offs for the next block: c the bucket bound nearest
// the q-quantile of the stable's counts since the first look together
// with its history, once those hold at least 1/(1−q) observations, and
// c⁺, c⁻ around c+δ; with each revision's cumulative counts at them, and
// the history's at c. The zero LatencyCut when no cut-off qualifies.
func cutsAt(can, stab, hist Histogram, q, delta float64) LatencyCut {
	all := merged(hist, stab)
	if float64(all.Count()) < 1/(1-q) {
		return LatencyCut{}
	}
	c := nearestBound(all, estimateQuantile(all, q))
	if c == 0 {
		return LatencyCut{}
	}
	failCut, passCut := boundsAround(can.Bounds, c+time.Duration(math.Ceil(delta*1e9)), c+time.Duration(math.Floor(delta*1e9)))
	cut := LatencyCut{Cut: c, FailCut: failCut, PassCut: passCut}
	cut.Stable, _ = atOrAbove(stab, c, stab.Count())
	cut.CanaryFail, _ = atOrAbove(can, failCut, can.Count())
	cut.CanaryPass, _ = atOrAbove(can, passCut, can.Count())
	if h, ok := atOrAbove(hist, c, hist.Count()); ok && len(hist.Counts) == len(stab.Counts) {
		cut.History = h
	}
	return cut
}

// atOrAbove returns the n observations of h and how many of them are at
// or above the bucket bound b (bucket i holds [Bounds[i−1], Bounds[i])),
// and false when b is not one of h's finite bounds. b = 0 (no cut-off)
// gives no observations above it.
func atOrAbove(h Histogram, b time.Duration, n uint64) (Counts, bool) {
	if b == 0 {
		return Counts{Requests: n}, true
	}
	i, found := slices.BinarySearch(h.Bounds, b)
	if !found || b == math.MaxInt64 {
		return Counts{}, false
	}
	var above uint64
	for _, c := range h.Counts[i+1:] {
		above += c
	}
	return Counts{Requests: n, Errors: above}, true
}

// nearestBound returns the finite bucket bound of h nearest to s seconds,
// 0 for an empty histogram.
func nearestBound(h Histogram, s float64) time.Duration {
	if h.Count() == 0 || s <= 0 {
		return 0
	}
	d := time.Duration(s * float64(time.Second))
	i, _ := slices.BinarySearch(h.Bounds, d)
	best := time.Duration(0)
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(h.Bounds) || h.Bounds[j] == math.MaxInt64 {
			continue
		}
		if best == 0 || absDuration(h.Bounds[j]-d) < absDuration(best-d) {
			best = h.Bounds[j]
		}
	}
	return best
}

// boundsAround returns the smallest finite bound ≥ up and the largest ≤
// down, 0 for none.
func boundsAround(bounds []time.Duration, up, down time.Duration) (atLeast, atMost time.Duration) {
	i, _ := slices.BinarySearch(bounds, up)
	if i < len(bounds) && bounds[i] != math.MaxInt64 {
		atLeast = bounds[i]
	}
	j, found := slices.BinarySearch(bounds, down)
	if !found {
		j--
	}
	if j >= 0 && bounds[j] != math.MaxInt64 {
		atMost = bounds[j]
	}
	return atLeast, atMost
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
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
