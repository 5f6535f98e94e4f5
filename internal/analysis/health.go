package analysis

import (
	"fmt"
	"math"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
)

// DegradedMargin is how far above the stable's history a revision's error
// rate must be shown to count as degraded when the manifest has no
// errorRate compare check to take the tolerance from: one percentage
// point.
const DegradedMargin = 0.01

// Degraded tests whether a revision's error rate since the rollout began
// (now) is above the stable revision's rate before it (history) by more
// than margin. It is the one-sample test behind "the target is healthy":
// the history's rate is bounded above by an anytime-valid confidence
// sequence at α/2, and the revision's rate is shown above that bound plus
// margin by another at α/2 (judge.Threshold, the beta-binomial mixture of
// Howard, Ramdas, McAuliffe & Sekhon 2021), so a revision that is in truth
// no worse than its history is called degraded, however often it is
// looked at, with probability at most α. With no history (the upper bound
// is then 100%) nothing is ever called degraded. whose names the history
// in the reason ("its", "revision 1's"). ok reports a degraded revision;
// reason then says why in words.
func Degraded(history, now judge.Sample, margin, alpha float64, whose string) (reason string, ok bool) {
	inf := math.Inf(1)
	hist := judge.Threshold{Metric: judge.ErrorRate, Max: &inf}.Judge(judge.Observation{Canary: history}, alpha/2)
	upper := hist.Evidence.Interval[1]
	if history.Requests == 0 || math.IsNaN(upper) || upper+margin >= 1 {
		return "", false
	}
	bound := upper + margin
	cur := judge.Threshold{Metric: judge.ErrorRate, Max: &bound}.Judge(judge.Observation{Canary: now}, alpha/2)
	if cur.Verdict != judge.Fail {
		return "", false
	}
	pct := func(v float64) string { return fmt.Sprintf("%.3g%%", 100*v) }
	return fmt.Sprintf("error rate %s (%d of %d requests since the rollout began) is above %s history before it (%s of %d requests, at most %s) by more than %s: it is at least %s (α = %.3g)",
		pct(cur.Evidence.Canary), min(now.Errors, now.Requests), now.Requests, whose, pct(hist.Evidence.Canary), history.Requests,
		pct(upper), pct(margin), pct(cur.Evidence.Interval[0]), alpha), true
}

// HealthLevel is the margin and α of Degraded for a manifest's analysis
// section: the tolerance of its first errorRate compare check (else
// DegradedMargin), and its α (else judge.DefaultAlpha). The health test
// never rolls back, so it spends none of the checks' budget: a false
// "degraded" holds a rollout for a person to look at.
func HealthLevel(an *manifest.Analysis) (margin, alpha float64) {
	margin, alpha = DegradedMargin, judge.DefaultAlpha
	if an == nil {
		return margin, alpha
	}
	if an.Alpha > 0 {
		alpha = an.Alpha
	}
	for _, c := range an.Checks {
		if c.Compare == nil || c.Compare.Metric != string(judge.ErrorRate) {
			continue
		}
		if v, err := judge.ParseValue(judge.ErrorRate, c.Compare.MaxIncrease); err == nil && v > 0 {
			return v, alpha
		}
	}
	return margin, alpha
}
