package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// window turns the router's cumulative counts, which begin when a revision
// first took traffic, into counts since the first look of this rollout:
// the stable revision's history before the canary started is not compared
// with the canary. A count that went backwards (the router was recreated)
// starts the window again.
type window struct {
	base  map[int]judge.Sample
	first time.Time // first look at which the canary had requests
}

func (w *window) since(all map[int]judge.Sample, rev int) judge.Sample {
	cur := all[rev]
	if w.base == nil {
		w.base = map[int]judge.Sample{}
	}
	b, ok := w.base[rev]
	if !ok || cur.Requests < b.Requests || len(cur.Latency.Counts) != len(b.Latency.Counts) {
		b = judge.Sample{Latency: judge.Histogram{Bounds: cur.Latency.Bounds, Counts: make([]uint64, len(cur.Latency.Counts))}}
		if !ok {
			b = cur // first look: start from here
		}
		w.base[rev] = b
	}
	out := judge.Sample{Requests: cur.Requests - b.Requests, Errors: cur.Errors - min(b.Errors, cur.Errors),
		Latency: judge.Histogram{Bounds: cur.Latency.Bounds, Counts: make([]uint64, len(cur.Latency.Counts))}}
	for i, n := range cur.Latency.Counts {
		out.Latency.Counts[i] = n - min(b.Latency.Counts[i], n)
	}
	return out
}

// observe takes one look at both revisions. The stable's counts before
// the window began are its history, which a comparison uses to aim its
// bets and cut-offs (judge/history.go), never as evidence.
func (w *window) observe(src Sources, t Target, at time.Time) judge.Observation {
	all := src.Samples(t.App)
	obs := judge.Observation{Canary: w.since(all, t.Canary), Stable: w.since(all, t.Stable), History: w.base[t.Stable]}
	if obs.Canary.Requests > 0 && w.first.IsZero() {
		w.first = at
	}
	if !w.first.IsZero() {
		obs.Elapsed = at.Sub(w.first)
	}
	return obs
}

// compareCheck is a `compare` check: canary against stable, live.
type compareCheck struct {
	src    Sources
	target Target
	judge  judge.Compare
	alpha  float64
	win    window
	state  judge.RateState
	// stable is the stable's request count at the previous look, since
	// when it has not changed while the canary took requests (zero: it
	// changed at the last look).
	stable    uint64
	idleSince time.Time
}

// idleAfter is how long the stable revision must take no request, while
// the canary takes some, to count as idle (promoted away from) rather than
// between two requests. It is a time, not a number of looks, so that it
// means the same at every routerInterval.
const idleAfter = 3 * time.Second

func (c *compareCheck) look(_ context.Context, at time.Time) Result {
	obs := c.win.observe(c.src, c.target, at)
	var jr judge.Result
	c.state, jr = c.judge.Judge(c.state, obs, c.alpha)
	r := Result{Result: jr, At: at}
	r.Data = jr.Verdict != judge.Inconclusive ||
		(obs.Canary.Requests >= judge.MinRequests && obs.Stable.Requests >= judge.MinRequests)
	switch {
	case obs.Stable.Requests != c.stable || obs.Canary.Requests == 0:
		c.idleSince = time.Time{}
	case c.idleSince.IsZero():
		c.idleSince = at
	}
	c.stable = obs.Stable.Requests
	if jr.Verdict != judge.Fail && !c.idleSince.IsZero() && at.Sub(c.idleSince) >= idleAfter && obs.Stable.Requests >= judge.MinRequests {
		if f, ok := c.againstIdle(obs); ok {
			r.Result, r.Data = f, true
		}
	}
	return r
}

// againstIdle judges the canary when the stable revision takes no traffic
// any more — after a promotion, inside the rollback window — and the
// two-sample test, which needs both revisions to keep taking requests,
// cannot gather evidence. The stable's last figures bound its metric
// (an anytime-valid upper bound at α/2), and the canary fails when it is
// shown, at α/2, to be above that bound plus the tolerance. So this second
// test spends its own α: over the rollout and its window together, a good
// release is failed by a compare check with probability at most 2α
// (docs/decisions.md). Only a failure is taken from it.
func (c *compareCheck) againstIdle(obs judge.Observation) (judge.Result, bool) {
	inf := math.Inf(1)
	st := judge.Threshold{Check: c.judge.Check, Metric: c.judge.Metric, Max: &inf}.Judge(judge.Observation{Canary: obs.Stable}, c.alpha/2)
	upper := st.Evidence.Interval[1]
	if math.IsInf(upper, 0) || math.IsNaN(upper) {
		return judge.Result{}, false
	}
	bound := upper + c.judge.MaxIncrease
	can := judge.Threshold{Check: c.judge.Check, Metric: c.judge.Metric, Max: &bound}.Judge(judge.Observation{Canary: obs.Canary}, c.alpha/2)
	if can.Verdict != judge.Fail {
		return judge.Result{}, false
	}
	can.Evidence.Stable, can.Evidence.StableSamples = st.Evidence.Canary, st.Evidence.CanarySamples
	can.Evidence.Effect = can.Evidence.Canary - st.Evidence.Canary
	can.Evidence.Warnings = append(can.Evidence.Warnings,
		fmt.Sprintf("the stable revision took no requests for %s: compared with its last figures, upper bound %g", idleAfter, upper))
	can.Reason = fmt.Sprintf("the stable revision takes no traffic any more; against its last figures (%d requests, upper bound %g) plus the tolerance %g: %s",
		st.Evidence.CanarySamples, upper, c.judge.MaxIncrease, can.Reason)
	return can, true
}

func (c *compareCheck) close() {}

// thresholdCheck is a `threshold` check on the canary's router metrics.
type thresholdCheck struct {
	src    Sources
	target Target
	judge  judge.Threshold
	alpha  float64
	win    window
}

func (c *thresholdCheck) look(_ context.Context, at time.Time) Result {
	obs := c.win.observe(c.src, c.target, at)
	jr := c.judge.Judge(obs, c.alpha)
	r := Result{Result: jr, At: at}
	r.Data = jr.Verdict != judge.Inconclusive || obs.Canary.Requests >= judge.MinRequests
	return r
}

func (c *thresholdCheck) close() {}
