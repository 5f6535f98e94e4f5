package analysis

import (
	"context"
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

// observe takes one look at both revisions.
func (w *window) observe(src Sources, t Target, at time.Time) judge.Observation {
	all := src.Samples(t.App)
	obs := judge.Observation{Canary: w.since(all, t.Canary), Stable: w.since(all, t.Stable)}
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
}

func (c *compareCheck) look(_ context.Context, at time.Time) Result {
	obs := c.win.observe(c.src, c.target, at)
	var jr judge.Result
	c.state, jr = c.judge.Judge(c.state, obs, c.alpha)
	r := Result{Result: jr, At: at}
	r.Data = jr.Verdict != judge.Inconclusive ||
		(obs.Canary.Requests >= judge.MinRequests && obs.Stable.Requests >= judge.MinRequests)
	return r
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
