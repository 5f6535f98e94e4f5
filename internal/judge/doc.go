// Package judge turns a rollout's observations into verdicts: pass, fail or
// inconclusive, each with the evidence behind it (the test used, sample
// sizes, the effect with an anytime-valid interval, the e-value and
// p-value, warnings).
//
// It is pure: no clock, no I/O, no goroutines. Callers pass cumulative
// counts (as the router keeps them) and, for a comparison, the small state
// the previous look returned.
//
// A compare check of a latency quantile tests the share of requests
// slower than a cut-off near the stable's quantile, fixed look by look
// from earlier data (latency.go); it carries its cut-offs in RateState,
// so pass it the state the previous look returned, as for the error rate.
//
// Every statistical test here is anytime-valid: its false-fail probability
// stays below its α however often it is looked at and whenever the
// rollout stops, so checking every second costs nothing in false
// rollbacks. Several checks share one false-rollback budget by Bonferroni
// (see Budget). Too little data gives Inconclusive, never Fail.
//
// What the verdicts mean, for a check with tolerance δ (maxIncrease):
//
//   - Fail: the data reject "canary ≤ stable + δ" at level α. The
//     probability that a canary which is in truth within δ is ever failed,
//     over the whole rollout, is at most α.
//   - Pass: the data reject "canary ≥ stable + δ" at level α: the canary
//     is shown to be within δ. With δ = 0 two identical revisions can never
//     be shown to differ by less than nothing, so a compare check with
//     maxIncrease 0 passes only a canary that is measurably better; give a
//     positive maxIncrease for checks that should pass.
//   - Inconclusive: neither, yet.
package judge
