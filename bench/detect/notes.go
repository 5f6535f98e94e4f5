package main

import (
	"fmt"
	"strings"

	"github.com/lastgood/lastgood/bench/internal/stats"
)

// goals writes whether the goals were met, computed from the
// rows: false rollbacks ≤ α, and a mean of canary requests until
// rollback ≤ 2× Wald's E[N] at the same α and β (β = 0.01); the median
// against the simulated SPRT's median is reported beside it.
func (cfg config) goals(b *strings.Builder, splits []split) {
	fmt.Fprintf(b, "\n## Goals\n\n")
	for _, sp := range splits {
		fmt.Fprintf(b, "%d%% canary:\n\n", sp.traffic.percent())
		for _, r := range sp.rows {
			if r.sc.kind == "none" {
				rate := float64(r.detected) / float64(r.n)
				_, hi := clopperPearson(r.detected, r.n)
				fmt.Fprintf(b, "- False rollbacks ≤ α = %.2g: **%s** — %.2f%%, 95%% CI upper end %.2f%% (%s α).\n",
					cfg.alpha, metOrMissed(rate <= cfg.alpha), 100*rate, 100*hi, belowOrAbove(hi <= cfg.alpha))
				continue
			}
			mean, half := stats.Mean(r.reqs)
			med := percentile(r.reqs, 0.5)
			sprtMed := percentile(r.sprtSim, 0.5)
			fmt.Fprintf(b, "- %s: mean %.0f canary requests = %.2f× Wald's E[N] (95%% CI %.2f–%.2f×; **%s**); median %.0f = %.2f× the SPRT's median %.0f; the two-sample GRO floor is %.2f× E[N].\n",
				r.sc.name, mean, mean/r.sprt01, (mean-half)/r.sprt01, (mean+half)/r.sprt01, metOrMissed(mean <= 2*r.sprt01),
				med, med/sprtMed, sprtMed, r.gro/r.sprt01)
		}
		fmt.Fprintln(b)
	}
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func belowOrAbove(ok bool) string {
	if ok {
		return "below"
	}
	return "not below"
}

// methodNotes says how each column was computed and what the numbers mean.
const methodNotes = `
## How each column is computed

- **lastgood judge** (internal/judge, exactly as shipped): both checks are
  judged at every look on the routers' cumulative counts, each with the
  state its previous look returned. errorRate: a two-sample e-process for
  Bernoulli rates — per look, likelihood ratios of alternatives against
  their reverse information projection on the null "canary ≤ stable + δ"
  (Turner, Ly & Grünwald 2024; Grünwald, de Heide & Koolen 2024),
  multiplied over looks, for four bets at once — the plug-in estimate of
  the canary's rate, and 2×, 4× and 8× the stable's estimated rate — whose
  e-processes are averaged (an average of test martingales is one; Ramdas,
  Grünwald, Vovk & Shafer 2023) and compared with 1/α (Ville's
  inequality). latencyP99: the same e-process on the shares of slow
  requests — at each look the judge fixes a cut-off c, the bucket bound
  nearest the stable's estimated p99, and the next look's block scores
  each request as slow when it is at or above c (canary: c+δ rounded up
  to a bucket bound). The
  hypothesis it rejects is "P(canary ≥ c+δ) ≤ P(stable ≥ c)"; at c = the
  stable's exact p99 that is "the canary's p99 is at most δ above", and
  for any c it holds when the canary is not slower than the stable plus δ,
  so an A/A rollout fails with probability ≤ α. Because the cut-off and
  the bets are fixed before the data they score, the product stays a test
  supermartingale. The evidence still reports an anytime-valid interval
  for the p99 difference from quantile confidence sequences (Howard &
  Ramdas 2022). The stable's history (its minute of traffic before the
  canary started, judge.Observation.History) is used only for choices
  made before the data they score: the stable's rate in the bets and the
  first cut-off, so that the first look can already decide; its weight
  falls from 10,000 requests to none as the stable serves during the
  rollout (internal/judge history.go). "Requests" are the canary's
  requests at the look that failed; time is seconds since the canary
  started. Rollouts that were not rolled back within the horizon count in
  "detected" only.
- **Wald's SPRT** is the one-sample lower bound: it knows the baseline p0
  and the bad value p1 exactly and tests p0 against p1 with α = 0.01 (the
  whole budget, one check) and the stated β, one request at a time. Wald's
  approximation: E₁[N] = ((1−β) ln((1−β)/α) + β ln(β/(1−α))) / KL(p1‖p0),
  KL(p1‖p0) = p1 ln(p1/p0) + (1−p1) ln((1−p1)/(1−p0)). For latency, p0 =
  1% (the share of stable requests slower than the stable's exact p99) and
  p1 = the share of canary requests slower than it, 1 − Φ(z₀.₉₉ − ln f/σ)
  for a lognormal scaled by f — continuous latencies, no buckets. E[N]
  under H1 with β = 0.2 includes the 20% of runs that stop by accepting H0,
  which is why it is smaller than the β = 0.01 figure. It does not depend
  on the split: it never looks at the stable.
- **Two-sample GRO, rates known**: what a two-sample test must pay for not
  knowing the stable's rate now, with the check's own α/2: ln(2/α) / g,
  where g = KL(p1‖r) + k·KL(p0‖r), r = (p1 + k p0)/(1+k), k the stable's
  requests per canary request (19 at 5%, 4 at 20%), is the expected log
  growth per canary request of the growth-rate-optimal e-value for the
  true rates against "canary ≤ stable" (the reverse information
  projection of (p1, p0) is the null point (r, r)). It is the mean canary
  requests of the judge's e-process if its bets were the true rates,
  ignoring overshoot: the target its bets approach, and roughly the least
  a test can need in the mean (Wald-type bound, large samples) when it
  compares only what both revisions served at the same time.
- **Fixed horizon**: the canary sample size n of a one-sided two-proportion
  z-test with 80% power at α/2 per check and the 1:k split,
  n = (z_α √(p̄(1−p̄)(1+1/k)) + z_β √(p1(1−p1) + p0(1−p0)/k))² / (p1−p0)²,
  planned for the scenario's effect (errors, or the share of
  requests slower than the stable's p99). It is evaluated once, at n, on
  the same simulated traffic: a z-test on errors and one on the share of
  requests above the stable's observed p99 bucket; rejected if either
  rejects. "Power" is the share of rollouts rejected. For A/A it is
  evaluated at the end of the A/A horizon.
- **Flagger-style**: Flagger runs its metric checks every
  analysis.interval (here 60 s) over that interval's traffic — the canary's
  request-success-rate (a minimum, in %) and request-duration (a maximum
  p99, in ms) — and rolls back after threshold failed checks (here 1).
  Flagger's thresholds are absolute numbers the user writes, not relative
  to the primary; we use 1.5× the stable's true error rate (success rate
  ≥ 98.5% for a 1% baseline, ≥ 99.85% for 0.1%) and 1.15× the stable's true
  p99 (184 ms). Tighter thresholds detect sooner and roll back more good
  releases; looser ones the reverse. Detection happens only at a 60 s
  boundary, so it is 60 s of canary requests or a multiple.
- **Traffic**: every look exactly the split's share of 200 req/s (at 5%
  one canary and 19 stable requests per 100 ms; the router's weighted
  schedule is deterministic); each fails independently
  with the revision's error rate; latencies are lognormal (median 50 ms,
  σ = 0.5), the canary's scaled by the regression factor (so its p99 grows
  by that factor), counted in histograms with the router's bucket layout.
  bench/detect uses the router's own layout (router.BucketBounds: 8
  buckets per power of two from 1 µs, overflow from ~134 s).

## Assessment

The previous version (commit 1b44bf7: one look per second, no history,
20% canary only; same seed and rollout counts) needed medians of 2040,
280 and 720 canary requests for the three error scenarios and 1040 and
80 for p99 +20% and +100% — 1.8×, 2.6×, 2.3×, 1.8× and 6.2× SPRT(β=0.01)
— with A/A at 0.55% [0.34%, 0.83%]. Two changes, both in the product,
took it to the table above:

- **Looking every 100 ms** (analysis.routerInterval, new): the router
  checks read in-process counters, so a look costs microseconds, and the
  e-processes stay valid at any number of looks. Finer looks remove the
  overshoot of waiting for the next look (up to 40 canary requests at 20%
  before).
- **The stable's history aims the bets** (judge.Observation.History,
  new): the first look already knows the stable's rate and where its p99
  lies, so it can decide; before, the first look only learnt them. The
  history is never evidence (a stale one costs power, not validity;
  internal/judge tests it against a past incident, a cleaner, a faster
  and a slower past), and its weight shrinks to none as the stable serves.

What the numbers say:

- **False rollbacks** stay at or below α: 0.75% and 0.70% of 4000 A/A
  rollouts, each check within its α/2 by Ville's inequality. They rose
  from 0.55% because finer looks leave less overshoot: an e-process that
  crosses 1/α in small steps crosses it nearly exactly, so Ville's bound
  is nearly tight — the budget is spent, not wasted. The intervals' upper
  ends touch α (1.07%, 1.01%); the guarantee is the inequality, and more
  rollouts would only narrow the interval around a rate below α. The
  Flagger-style check rolls back 7% of good releases at 20% and 70% at 5%
  (a 60 s window of a 5% canary holds 600 requests, 6 expected errors, and
  its 1.5% threshold is 9).
- **At a 5% canary** — the first step of the manifest example in
  DESIGN.md and the usual order of Flagger's stepWeight — every scenario
  meets the goal: 1.32–1.53× SPRT(β=0.01) for errors and p99 +20%, 1.85×
  for p99 +100%, and 1.02–1.32× the two-sample growth-optimal figure.
- **At a 20% canary** 1% → 2%, 1% → 5% and p99 +20% meet it (1.61×,
  1.83×, 1.82×); 0.1% → 1% (2.12×) and p99 +100% (2.77×) miss it. The GRO
  column says why: comparing only what both revisions served at the same
  time, with 4 stable requests per canary request and each check at α/2,
  even a test that knew both rates would need 1.91× and 2.07× the SPRT
  in the mean. The judge is 1.11× and 1.34× that floor. Per canary
  request a smaller canary share costs less, because the stable's rate is
  learnt from more of its own requests (k = 19 at 5%): the SPRT, which
  never looks at the stable, is the k → ∞ limit. In seconds the larger
  share is faster (p99 +100% in 0.9 s at 20%, 2.4 s at 5%).
- **Against SPRT(β=0.2)**, the column kept from the earlier report, the
  judge is 1.87–2.61× at 5% and 2.27–3.91× at 20%. That SPRT stops by
  accepting a bad release one time in five; the judge rolled back every
  one, so the comparison with equal β is the one the goal is judged by.
- **Where the rest goes**: at 5% the judge is within 2–21% of the GRO
  floor except for p99 +100% (1.32×), which is decided in a median of 24
  canary requests, 2.4 looks' worth of them at 10 per second — the
  granularity of counting, not the bets. Latency pays a little more than
  errors for the question it asks: the cut-off is a bucket bound near the
  stable's p99, not the exact p99 (see internal/judge latency.go).
- **Tried and not kept** (1000 rollouts at 20%): the grids of fixed
  ratios {2, 4, 8, 16} and {1.5, 3, 6, 12} instead of {2, 4, 8} — no
  better anywhere, 1.5–12 worse at 1% → 2% (2128 against 1904). Earlier:
  shrinking the plug-in bet toward the pooled rate, grids of 5–9 ratios,
  a pooled estimate of the stable's rate under each ratio. Using the
  stable's history as evidence would bring a two-sample test near the
  one-sample SPRT, but it rolls back good canaries whenever the stable's
  own rate moves (an outage of a shared dependency, a traffic peak),
  exactly what comparing live revisions exists to avoid.
`
