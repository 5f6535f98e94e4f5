package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// window turns the router's cumulative counts, which begin when a revision
// first took traffic, into counts since the first look of this analysis:
// the stable revision's history before the canary started is not compared
// with the canary. The counts it returns never go backwards: when the
// router's do (the router was recreated and counts from zero again), what
// was counted before is carried over and the new counts are added to it,
// so a test goes on with the evidence it has instead of starting again
// with a fresh α. The requests between the last look and the reset are
// lost; nothing else is.
type window struct {
	base    map[int]judge.Sample // the router's counts the window starts from: at the first look, zero after a reset
	carried map[int]judge.Sample // counted since the first look before the last reset
	last    map[int]judge.Sample // the router's counts at the previous look
	history map[int]judge.Sample // the router's counts at the first look: what came before it
	first   time.Time            // first look at which the canary had requests
}

func (w *window) since(all map[int]judge.Sample, rev int) judge.Sample {
	cur := all[rev]
	if w.base == nil {
		w.base, w.carried, w.last, w.history = map[int]judge.Sample{}, map[int]judge.Sample{}, map[int]judge.Sample{}, map[int]judge.Sample{}
	}
	if _, ok := w.base[rev]; !ok { // first look: start from here
		w.base[rev], w.last[rev], w.history[rev] = cur, cur, cur
		w.carried[rev] = zeroLike(cur)
	}
	if backwards(w.last[rev], cur) {
		w.carried[rev] = add(w.carried[rev], sub(w.last[rev], w.base[rev]))
		w.base[rev] = zeroLike(cur)
	}
	w.last[rev] = cur
	return add(w.carried[rev], sub(cur, w.base[rev]))
}

// backwards reports whether now cannot have followed before: a count fell
// or the histogram's layout changed.
func backwards(before, now judge.Sample) bool {
	if now.Requests < before.Requests || now.Errors < before.Errors || len(now.Latency.Counts) != len(before.Latency.Counts) {
		return true
	}
	for i, n := range now.Latency.Counts {
		if n < before.Latency.Counts[i] {
			return true
		}
	}
	return false
}

// zeroLike returns an empty sample with s's histogram layout.
func zeroLike(s judge.Sample) judge.Sample {
	return judge.Sample{Latency: judge.Histogram{Bounds: s.Latency.Bounds, Counts: make([]uint64, len(s.Latency.Counts))}}
}

// sub returns a − b, clamped at zero, in a's layout.
func sub(a, b judge.Sample) judge.Sample {
	out := zeroLike(a)
	out.Requests = a.Requests - min(b.Requests, a.Requests)
	out.Errors = a.Errors - min(b.Errors, a.Errors)
	for i, n := range a.Latency.Counts {
		if i < len(b.Latency.Counts) {
			n -= min(b.Latency.Counts[i], n)
		}
		out.Latency.Counts[i] = n
	}
	return out
}

// add returns a + b in b's layout; a's histogram is added only when its
// layout is b's (after a change of layout the latency counts start again,
// which the judge sees as a reset).
func add(a, b judge.Sample) judge.Sample {
	out := zeroLike(b)
	out.Requests, out.Errors = a.Requests+b.Requests, a.Errors+b.Errors
	same := len(a.Latency.Counts) == len(b.Latency.Counts)
	for i, n := range b.Latency.Counts {
		if same {
			n += a.Latency.Counts[i]
		}
		out.Latency.Counts[i] = n
	}
	return out
}

// observe takes one look at both revisions. The stable's counts before
// the window began are its history, which a comparison uses to aim its
// bets and cut-offs (judge/history.go), never as evidence.
func (w *window) observe(src Sources, t Target, at time.Time) judge.Observation {
	all := src.Samples(t.App)
	obs := judge.Observation{Canary: w.since(all, t.Canary), Stable: w.since(all, t.Stable), History: w.history[t.Stable]}
	if obs.Canary.Requests > 0 && w.first.IsZero() {
		w.first = at
	}
	if !w.first.IsZero() {
		obs.Elapsed = at.Sub(w.first)
	}
	return obs
}

// compareCheck is a `compare` check: canary against stable, live, one
// e-process for the whole rollout and its rollback window. After a
// promotion the stable revision keeps rollback.holdback of the traffic,
// so both revisions are still measured at the same moments and the same
// test, with the same α, goes on gathering evidence (docs/decisions.md).
type compareCheck struct {
	src    Sources
	target Target
	judge  judge.Compare
	alpha  float64
	win    window
	state  judge.RateState
	// stable is the stable's request count at the previous look, and
	// idleSince when it last stopped growing while the canary took
	// requests (zero while it grows).
	stable    uint64
	idleSince time.Time
}

// idleAfter is how long the stable revision must take no request, while
// the canary takes some, to count as idle (promoted away from, with no
// holdback) rather than between two requests. It is a time, not a number
// of looks, so that it means the same at every routerInterval.
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
	if idle := at.Sub(c.idleSince); !c.idleSince.IsZero() && idle >= idleAfter && jr.Verdict != judge.Fail {
		// Without a concurrent baseline a two-sample test gathers no
		// evidence, and judging the canary against the stable's last
		// figures would fail a good release whenever load, CPU or a
		// neighbour moves its latency (the frozen figures move with
		// nothing): say so rather than show a number that cannot move.
		note := fmt.Sprintf("the stable revision has taken no request for %s: with no concurrent baseline (rollback.holdback 0 after a promotion) this test gathers no evidence",
			idle.Truncate(time.Second))
		r.Evidence.Warnings = append(r.Evidence.Warnings, note)
		r.Reason = note + "; " + r.Reason
	}
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
