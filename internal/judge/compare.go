package judge

import (
	"errors"
	"fmt"
	"math"
)

// MinRequests is the canary request count below which every verdict
// carries a warning that the sample is small. It gates nothing: the tests
// are valid at any sample size and simply cannot conclude on little data.
const MinRequests = 100

// ErrNotComparable is returned for a comparison of a metric that the
// traffic weights decide rather than the revisions (requestRate).
var ErrNotComparable = errors.New("metric cannot be compared between revisions")

// Compare is a check that compares the canary with the stable revision,
// both observed at the same time: it fails when the canary's metric is
// larger than the stable's by more than MaxIncrease (in the metric's unit:
// a fraction for errorRate, seconds for latencies).
type Compare struct {
	Check       string
	Metric      Metric
	MaxIncrease float64
	// Relative makes MaxIncrease a share of the stable's rate (0.2: the
	// canary may fail 20% more often), tested against the boundary
	// p_canary = (1+MaxIncrease)·p_stable (Relative, rate.go). Error
	// rates only.
	Relative bool
}

// bound is the error-rate test's null boundary.
func (c Compare) bound() Bound {
	if c.Relative {
		return Relative(c.MaxIncrease)
	}
	return Absolute(c.MaxIncrease)
}

// tolerance writes MaxIncrease for a reason.
func (c Compare) tolerance() string {
	if c.Relative {
		return fmt.Sprintf("%.3g%% relative", 100*c.MaxIncrease)
	}
	return fmt.Sprintf("%.3g%%", 100*c.MaxIncrease)
}

// Validate reports a comparison the judge cannot run.
func (c Compare) Validate() error {
	if _, err := ParseMetric(string(c.Metric)); err != nil {
		return fmt.Errorf("check %q: %w", c.Check, err)
	}
	if c.Metric == RequestRate {
		return fmt.Errorf("check %q: %w: requestRate follows the weights; use a threshold check", c.Check, ErrNotComparable)
	}
	if _, ok := c.Metric.Quantile(); ok && c.Relative {
		return fmt.Errorf("check %q: %w: a relative maxIncrease is for rates, not latencies", c.Check, ErrBadValue)
	}
	if c.MaxIncrease < 0 || math.IsNaN(c.MaxIncrease) || math.IsInf(c.MaxIncrease, 0) || (c.Metric == ErrorRate && !c.Relative && c.MaxIncrease >= 1) {
		return fmt.Errorf("check %q: %w: maxIncrease %v must be ≥ 0 (and < 1 for errorRate)", c.Check, ErrBadValue, c.MaxIncrease)
	}
	return nil
}

// Judge looks at the rollout once. alpha is this check's share of the
// false-rollback budget (see Budget). state is what the previous look of
// this check returned (the zero value at the first look); both the
// error-rate and the latency test accumulate evidence in it. Call it at
// every look, with cumulative counts.
func (c Compare) Judge(state RateState, obs Observation, alpha float64) (RateState, Result) {
	if err := c.Validate(); err != nil {
		return state, invalid(c.Check, c.Metric, alpha, err)
	}
	first := !state.Primed
	state = state.prime(obs.History)
	if q, ok := c.Metric.Quantile(); ok {
		return c.latency(state, obs, q, alpha, first)
	}
	return c.errorRate(state, obs, alpha)
}

func invalid(check string, m Metric, alpha float64, err error) Result {
	return Result{
		Check:   check,
		Verdict: Inconclusive,
		Evidence: Evidence{
			Metric: m, Alpha: alpha, PValue: 1,
			Interval: [2]float64{math.Inf(-1), math.Inf(1)},
			Warnings: []string{err.Error()},
		},
		Reason: "the check cannot be judged: " + err.Error(),
	}
}

// rateMethod is the error-rate comparison's name and sources.
var rateMethod = Method{
	Name:     "two-sample e-process for Bernoulli rates (reverse information projection, plug-in bets)",
	Citation: "Turner, Ly & Grünwald 2024 (Stat. Probab. Lett. 205); Grünwald, de Heide & Koolen 2024 (JRSS-B 86(5)); Ville 1939",
}

func (c Compare) errorRate(state RateState, obs Observation, alpha float64) (RateState, Result) {
	canary := Counts{obs.Canary.Requests, min(obs.Canary.Errors, obs.Canary.Requests)}
	stable := Counts{obs.Stable.Requests, min(obs.Stable.Errors, obs.Stable.Requests)}
	restarts := state.Restarts
	state = rateStep(state, canary, stable, c.bound())

	ev := Evidence{
		Method: rateMethod, Metric: c.Metric, Unit: c.Metric.Unit(),
		CanarySamples: canary.Requests, StableSamples: stable.Requests,
		HistorySamples: min(state.History.Requests, room(stable.Requests)),
		Canary:         ratio(canary.Errors, canary.Requests),
		Stable:         ratio(stable.Errors, stable.Requests),
		LogEValue:      state.LogEFail,
		PValue:         pValue(state.MaxLogEFail),
		Threshold:      c.MaxIncrease,
		Alpha:          alpha,
	}
	ev.Effect = ev.Canary - ev.Stable
	// The interval combines one confidence sequence per revision at α/2
	// each (mixture.go): coarser than the test, which pools both, so the
	// test can conclude while the interval still touches δ.
	clo, chi := jeffreys.interval(float64(canary.Errors), float64(canary.Requests), alpha/2)
	slo, shi := jeffreys.interval(float64(stable.Errors), float64(stable.Requests), alpha/2)
	ev.Interval = [2]float64{clo - shi, chi - slo}
	ev.Warnings = sampleWarnings(canary.Requests, stable.Requests)
	if state.Restarts > restarts {
		ev.Warnings = append(ev.Warnings, "a revision's counters went backwards (restarted?); the requests since the last look were not scored, the evidence so far stands")
	}
	if canary.Errors+stable.Errors == 0 {
		ev.Warnings = append(ev.Warnings, "no errors on either revision yet")
	}
	ev.Warnings = append(ev.Warnings, "assumes requests fail independently at a constant rate per revision")

	limit := math.Log(1 / alpha)
	res := Result{Check: c.Check, Verdict: Inconclusive, Evidence: ev}
	pct := func(v float64) string { return fmt.Sprintf("%.3g%%", 100*v) }
	switch {
	case state.MaxLogEFail >= limit:
		res.Verdict = Fail
		res.Reason = fmt.Sprintf("canary error rate %s (%d/%d) exceeds stable's %s (%d/%d) by more than %s: e-value %.3g ≥ 1/α = %.3g",
			pct(ev.Canary), canary.Errors, canary.Requests, pct(ev.Stable), stable.Errors, stable.Requests,
			c.tolerance(), math.Exp(state.MaxLogEFail), 1/alpha)
	case state.MaxLogEPass >= limit:
		res.Verdict = Pass
		res.Reason = fmt.Sprintf("canary error rate %s (%d/%d) is within %s of stable's %s (%d/%d): e-value %.3g ≥ 1/α = %.3g against a larger increase",
			pct(ev.Canary), canary.Errors, canary.Requests, c.tolerance(), pct(ev.Stable), stable.Errors, stable.Requests,
			math.Exp(state.MaxLogEPass), 1/alpha)
	default:
		res.Reason = fmt.Sprintf("not yet conclusive: canary %s (%d/%d), stable %s (%d/%d), tolerance %s, e-value %.3g of the %.3g needed to fail",
			pct(ev.Canary), canary.Errors, canary.Requests, pct(ev.Stable), stable.Errors, stable.Requests,
			c.tolerance(), math.Exp(state.MaxLogEFail), 1/alpha)
	}
	return state, res
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func sampleWarnings(canary, stable uint64) []string {
	var w []string
	if canary < MinRequests {
		w = append(w, fmt.Sprintf("fewer than %d requests on the canary (%d)", MinRequests, canary))
	}
	if stable < MinRequests {
		w = append(w, fmt.Sprintf("fewer than %d requests on the stable revision (%d)", MinRequests, stable))
	}
	return w
}
