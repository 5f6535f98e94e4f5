package main

import (
	"fmt"
	"strings"
)

// goals writes whether the goals were met, computed from rows.
func (cfg config) goals(b *strings.Builder, rows []row) {
	fmt.Fprintf(b, "\n## Goals\n\n")
	for _, r := range rows {
		if r.sc.kind == "none" {
			rate := float64(r.detected) / float64(r.n)
			_, hi := clopperPearson(r.detected, r.n)
			fmt.Fprintf(b, "- False rollbacks ≤ α = %.2g: **%s** — %.2f%%, 95%% CI upper end %.2f%% (%s α).\n",
				cfg.alpha, metOrMissed(rate <= cfg.alpha), 100*rate, 100*hi, belowOrAbove(hi <= cfg.alpha))
			continue
		}
		med := percentile(r.reqs, 0.5)
		fmt.Fprintf(b, "- %s: median %.0f canary requests = %.2f× SPRT(β=0.2) (**%s**), %.2f× SPRT(β=0.01) (**%s**) against the ≤ 2× goal.\n",
			r.sc.name, med, med/r.sprt20, metOrMissed(med <= 2*r.sprt20), med/r.sprt01, metOrMissed(med <= 2*r.sprt01))
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
  judged at every look on the routers' cumulative counts. errorRate: a
  two-sample e-process for Bernoulli rates — per look, a likelihood ratio of
  a plug-in alternative against its reverse information projection on the
  null "canary ≤ stable + δ" (Turner, Ly & Grünwald 2024; Grünwald, de Heide
  & Koolen 2024), multiplied over looks and compared with 1/α (Ville's
  inequality). latencyP99: anytime-valid confidence sequences for each
  revision's p99 (Howard & Ramdas 2022) from one-sided log-odds mixtures,
  read at the histograms' bucket bounds; fail when the canary's lower bound
  exceeds the stable's upper bound. "Requests" are the canary's requests at
  the look that failed; time is seconds since the canary started. Rollouts
  that were not rolled back within the horizon count in "detected" only.
- **Wald's SPRT** is the one-sample lower bound: it knows the baseline p0
  and the bad value p1 exactly and tests p0 against p1 with α = 0.01 (the
  whole budget, one check) and the stated β, one request at a time. Wald's
  approximation: E₁[N] = ((1−β) ln((1−β)/α) + β ln(β/(1−α))) / KL(p1‖p0),
  KL(p1‖p0) = p1 ln(p1/p0) + (1−p1) ln((1−p1)/(1−p0)). For latency, p0 =
  1% (the share of stable requests slower than the stable's exact p99) and
  p1 = the share of canary requests slower than it, 1 − Φ(z₀.₉₉ − ln f/σ)
  for a lognormal scaled by f — continuous latencies, no buckets. E[N]
  under H1 with β = 0.2 includes the 20% of runs that stop by accepting H0,
  which is why it is smaller than the β = 0.01 figure.
- **Fixed horizon**: the canary sample size n of a one-sided two-proportion
  z-test with 80% power at α/2 per check and the 1:4 split,
  n = (z_α √(p̄(1−p̄)(1+1/k)) + z_β √(p1(1−p1) + p0(1−p0)/k))² / (p1−p0)²,
  k = 4, planned for the scenario's effect (errors, or the share of
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
  boundary, so it is 2400 canary requests or a multiple.
- **Traffic**: every second exactly 40 canary and 160 stable requests (the
  router's weighted schedule is deterministic); each fails independently
  with the revision's error rate; latencies are lognormal (median 50 ms,
  σ = 0.5), the canary's scaled by the regression factor (so its p99 grows
  by that factor), counted in histograms with the router's bucket layout.
  The router keeps its layout unexported, so bench/detect replicates it
  (buckets.go: 8 buckets per power of two from 1 µs, overflow from ~134 s).

## Assessment

- **False rollbacks** are far below α: the tests are anytime-valid (Ville's
  inequality over an unbounded horizon), so over a finite 10-minute
  analysis they are conservative. The Flagger-style check, with thresholds
  tight enough to catch these regressions within a minute, rolls back many
  more good releases; the one-shot fixed-horizon test is right on α but
  only if nobody looks before n.
- **Error rates** detect in 2.8–3.6× the SPRT(β=0.2) figure and about
  2.0–2.6× SPRT(β=0.01): the ≤ 2× goal is missed against β = 0.2 and met or
  nearly met against β = 0.01. Most of the gap is the problem, not the
  method: the SPRT knows the stable's rate; with the stable's rate unknown
  and a 1:4 split, the information per canary request is at most
  1/(1 + 1/4) = 0.8 of the one-sample test's; each check has α/2 (ln 200
  instead of ln 100 to reach); and the first look only calibrates the
  bets. In development, the same two-sample e-process given the true rates
  as its bet (an oracle no real test has) needed a median of 1760 canary
  requests at 1% → 2% (300 rollouts) — already 2.2× SPRT(β=0.2). The
  judge's plug-in bets cost about 30% on top of that oracle. It beats the
  Flagger-style check's 60 s floor for every error scenario but 1% → 2%,
  where they tie, and needs no threshold tuned per service.
- **Latency** is the weak spot: 24–30× the SPRT figure. The SPRT knows
  the stable's exact p99; the judge must learn it, and a valid upper bound
  on a p99 needs several hundred stable requests before it says anything.
  It also reads quantiles only at bucket bounds (up to 12.5% apart): for
  p99 +20% the best pair of bounds (176 ms for both revisions) sees 1.6%
  of canary and 0.6% of stable requests above it, where the SPRT sees 2.5%
  against 1% above the exact p99 — a far smaller effect to detect. Finer
  buckets, or a two-sample test of the share of slow requests at a
  predictable cut-off (which answers a slightly different question than
  "p99 rose"), would close much of the gap; neither is done.
`
