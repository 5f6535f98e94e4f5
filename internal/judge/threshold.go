package judge

import (
	"fmt"
	"math"
)

// Threshold is a check that compares one metric of the canary with fixed
// bounds: it fails when the metric is shown to be above Max or below Min
// (nil when absent), and passes when it is shown to be within both.
// "Shown" means by an anytime-valid confidence sequence at level 1−α:
//
//   - errorRate: the beta-binomial mixture sequence for a rate (mixture.go);
//   - latencies: the quantile sequences of latency.go;
//   - requestRate: the gamma-Poisson mixture sequence for the rate of a
//     Poisson process, over Observation.Elapsed — so it assumes arrivals
//     are Poisson, and a load that arrives in bursts is judged as if it
//     were smoother than it is.
type Threshold struct {
	Check    string
	Metric   Metric
	Max, Min *float64
}

// Validate reports a threshold the judge cannot run.
func (t Threshold) Validate() error {
	if _, err := ParseMetric(string(t.Metric)); err != nil {
		return fmt.Errorf("check %q: %w", t.Check, err)
	}
	if t.Max == nil && t.Min == nil {
		return fmt.Errorf("check %q: %w: a threshold needs max, min or both", t.Check, ErrBadValue)
	}
	if t.Max != nil && t.Min != nil && *t.Min > *t.Max {
		return fmt.Errorf("check %q: %w: min %v is above max %v", t.Check, ErrBadValue, *t.Min, *t.Max)
	}
	return nil
}

var thresholdMethods = map[Metric]Method{
	ErrorRate: {
		Name:     "confidence sequence for a rate (beta-binomial mixture)",
		Citation: "Howard, Ramdas, McAuliffe & Sekhon 2021 (Ann. Statist. 49(2))",
	},
	RequestRate: {
		Name:     "confidence sequence for a Poisson rate (gamma-Poisson mixture)",
		Citation: "Howard, Ramdas, McAuliffe & Sekhon 2021 (Ann. Statist. 49(2))",
	},
}

// Judge looks at the canary once. It needs no state: the sequences are
// functions of the cumulative counts. alpha is this check's share of the
// false-rollback budget.
func (t Threshold) Judge(obs Observation, alpha float64) Result {
	if err := t.Validate(); err != nil {
		return invalid(t.Check, t.Metric, alpha, err)
	}
	can := obs.Canary
	ev := Evidence{Metric: t.Metric, Unit: t.Metric.Unit(), CanarySamples: can.Requests, Alpha: alpha}
	if t.Max != nil {
		ev.Threshold = *t.Max
	} else {
		ev.Threshold = *t.Min
	}
	var lo, hi float64
	switch q, isLatency := t.Metric.Quantile(); {
	case isLatency:
		ev.Method = latencyMethod
		ev.CanarySamples = can.Latency.Count()
		ev.Canary = estimateQuantile(can.Latency, q)
		// Each decision rests on one bound at α; the reported interval
		// holds both at α/2.
		e := scanQuantile(can.Latency, q)
		lo, hi = e.interval(alpha)
		shownLo, shownHi := e.interval(alpha / 2)
		ev.Interval = [2]float64{shownLo, shownHi}
		ev.Warnings = append(ev.Warnings, bucketWarning)
	case t.Metric == RequestRate:
		ev.Method = thresholdMethods[RequestRate]
		secs := obs.Elapsed.Seconds()
		if secs <= 0 {
			lo, hi = 0, math.Inf(1)
			ev.Warnings = append(ev.Warnings, "no elapsed time given; a request rate needs one")
			break
		}
		ev.Canary = float64(can.Requests) / secs
		lo, hi = gammaPoisson{0.5, 1}.interval(float64(can.Requests), secs, alpha)
		ev.Warnings = append(ev.Warnings, "assumes requests arrive as a Poisson process")
	default:
		ev.Method = thresholdMethods[ErrorRate]
		errs := min(can.Errors, can.Requests)
		ev.Canary = ratio(errs, can.Requests)
		lo, hi = jeffreys.interval(float64(errs), float64(can.Requests), alpha)
		ev.Warnings = append(ev.Warnings, "assumes requests fail independently at a constant rate")
	}
	ev.Effect = ev.Canary
	if _, isLatency := t.Metric.Quantile(); !isLatency {
		ev.Interval = [2]float64{lo, hi}
	}
	ev.PValue = 1
	if ev.CanarySamples < MinRequests {
		ev.Warnings = append([]string{fmt.Sprintf("fewer than %d requests on the canary (%d)", MinRequests, ev.CanarySamples)}, ev.Warnings...)
	}
	return t.verdict(ev, lo, hi)
}

// verdict decides on the bounds lo and hi of the canary's metric.
func (t Threshold) verdict(ev Evidence, lo, hi float64) Result {
	show := func(v float64) string {
		switch t.Metric {
		case ErrorRate:
			return fmt.Sprintf("%.3g%%", 100*v)
		case RequestRate:
			return fmt.Sprintf("%.3g/s", v)
		}
		return seconds(v)
	}
	res := Result{Check: t.Check, Verdict: Inconclusive, Evidence: ev}
	within := fmt.Sprintf("[%s, %s]", show(ev.Interval[0]), show(ev.Interval[1]))
	switch {
	case t.Max != nil && lo > *t.Max:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary %s %s is above max %s: it lies in %s (α = %.3g)", t.Metric, show(ev.Canary), show(*t.Max), within, ev.Alpha)
	case t.Min != nil && hi < *t.Min:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary %s %s is below min %s: it lies in %s (α = %.3g)", t.Metric, show(ev.Canary), show(*t.Min), within, ev.Alpha)
	case (t.Max == nil || hi <= *t.Max) && (t.Min == nil || lo >= *t.Min):
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("canary %s %s is within bounds: it lies in %s (α = %.3g)", t.Metric, show(ev.Canary), within, ev.Alpha)
	default:
		res.Reason = fmt.Sprintf("not yet conclusive: canary %s %s lies in %s", t.Metric, show(ev.Canary), within)
	}
	return res
}
