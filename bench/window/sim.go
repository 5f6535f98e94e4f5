package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/strategy"
)

// condition is what the environment does to both revisions at once: a
// load surge, CPU contention on the host, a neighbour's surge. It scales
// the arrivals and moves latencies and errors of every request served
// while it lasts, whichever revision serves it.
type condition struct {
	rate    float64       // arrivals, × the base rate
	latency float64       // latencies, ×
	shift   time.Duration // latencies, +
	errors  float64       // error probability, +
}

var calm = condition{rate: 1, latency: 1}

// episode is a condition from one moment to another, both counted from the
// promotion.
type episode struct {
	from, to time.Duration
	c        condition
}

// arm is one revision's behaviour in calm conditions: an error
// probability and lognormal latencies (median × exp(σZ)) plus a shift.
type arm struct {
	errRate float64
	median  time.Duration
	sigma   float64
	shift   time.Duration
}

// base is the stable revision, and an A/A release's new one: 1% errors,
// median 50 ms, σ 0.5 (p99 ≈ 160 ms).
var base = arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5}

// serve draws n requests of a under c into s.
func (a arm) serve(rng *rand.Rand, c condition, s *judge.Sample, n int) {
	mu := math.Log(a.median.Seconds() * c.latency)
	p := a.errRate + c.errors
	for range n {
		s.Requests++
		if rng.Float64() < p {
			s.Errors++
		}
		d := time.Duration(math.Exp(mu+a.sigma*rng.NormFloat64())*float64(time.Second)) + a.shift + c.shift
		s.Latency.Counts[router.BucketOf(d)]++
	}
}

// setup is what every release of a run shares.
type setup struct {
	rate     float64       // requests per second in calm conditions
	look     time.Duration // analysis.routerInterval
	history  time.Duration // how long the stable served alone before the release
	window   time.Duration // rollback.window
	holdback int           // rollback.holdback, percent
	alpha    float64       // analysis.alpha, shared by the two checks
	// errTolerance and latTolerance are the checks' maxIncrease.
	errTolerance float64
	latTolerance time.Duration
	strategy     manifest.Strategy
	// frozen judges the window as lastgood did before the holdback: once
	// the stable has taken no request for 3 s, the canary against the
	// stable's last figures (an upper bound at α/2, tested at α/2).
	frozen bool
}

// outcome is what one release did.
type outcome struct {
	rolledBack bool
	inWindow   bool    // rolled back after promotion
	promoted   bool    // reached promotion
	at         float64 // seconds since the release started, when rolled back
	after      float64 // seconds since promotion, when rolled back inside the window
	byLatency  bool    // the latency check decided
	byFrozen   bool    // the frozen-baseline comparison decided (setup.frozen)
	canaryReqs uint64  // the new revision's requests when it was decided
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// release simulates one release: its steps, its promotion, its rollback
// window, with the product's strategy core (internal/strategy: Start,
// Next, Desired — the weights, the promotion and the holdback are its own)
// and judge (internal/judge), looking every s.look. episodes hit both
// revisions after the promotion.
func (s setup) release(rng *rand.Rand, canary arm, episodes []episode) outcome {
	bounds := router.BucketBounds()
	fresh := func() judge.Sample {
		return judge.Sample{Latency: judge.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}}
	}
	hist, can, stab := fresh(), fresh(), fresh()
	base.serve(rng, calm, &hist, int(s.rate*s.history.Seconds()))

	spec := strategy.Spec{Replicas: 2, Strategy: s.strategy, ProgressDeadline: 2 * time.Minute, Window: s.window,
		Checks: 2, OnNoData: strategy.NoDataWait, Holdback: s.holdback}
	kind := s.strategy.Kind()
	st := strategy.Start(kind, spec, 1, 2, 2, t0)
	alpha := judge.Budget(s.alpha, 2)
	errCheck := judge.Compare{Check: "errors", Metric: judge.ErrorRate, MaxIncrease: s.errTolerance}
	latCheck := judge.Compare{Check: "latency", Metric: judge.LatencyP99, MaxIncrease: s.latTolerance.Seconds()}
	var errState, latState judge.RateState
	var idle idleStable
	var out outcome
	var promotedAt time.Time
	credit := map[int]float64{}
	for look := 1; ; look++ {
		now := t0.Add(time.Duration(look) * s.look)
		cond := calm
		if !promotedAt.IsZero() {
			cond = conditionAt(episodes, now.Sub(promotedAt))
		}
		// The block since the last look, split as the router's weighted
		// schedule splits it: exactly by weight, remainders carried.
		plan := strategy.Desired(st)
		total := 0
		for _, w := range plan.Weights {
			total += w
		}
		n := s.rate * cond.rate * s.look.Seconds()
		for rev, w := range plan.Weights {
			credit[rev] += n * float64(w) / float64(total)
			k := int(credit[rev])
			credit[rev] -= float64(k)
			if rev == 2 {
				canary.serve(rng, cond, &can, k)
			} else {
				base.serve(rng, cond, &stab, k)
			}
		}
		obs := judge.Observation{Canary: can, Stable: stab, History: hist, Elapsed: now.Sub(t0)}
		var er, lr judge.Result
		errState, er = errCheck.Judge(errState, obs, alpha)
		latState, lr = latCheck.Judge(latState, obs, alpha)
		var frozen bool
		if s.frozen {
			frozen = idle.judge(now, obs, errCheck, latCheck, alpha)
		}
		checks := []strategy.Check{verdict(er, obs, now), verdict(lr, obs, now)}
		if frozen {
			checks[0].Verdict = strategy.Fail
		}
		next, _ := strategy.Next(spec, st, strategy.Observation{
			Now:    now,
			From:   strategy.Count{Running: st.FromReplicas, Ready: st.FromReplicas},
			To:     strategy.Count{Running: st.ToReplicas, Ready: st.ToReplicas},
			Checks: checks,
		})
		if next.Phase == strategy.Promoted && st.Phase != strategy.Promoted {
			promotedAt, out.promoted = now, true
		}
		st = next
		switch {
		case st.Phase == strategy.RolledBack:
			out.rolledBack, out.inWindow, out.at = true, st.InWindow, now.Sub(t0).Seconds()
			out.byLatency = lr.Verdict == judge.Fail && er.Verdict != judge.Fail
			out.byFrozen = frozen && er.Verdict != judge.Fail && lr.Verdict != judge.Fail
			out.canaryReqs = can.Requests
			if st.InWindow {
				out.after = now.Sub(promotedAt).Seconds()
			}
			return out
		case st.Phase == strategy.Promoted && !strategy.InWindow(st, now):
			return out
		case now.Sub(t0) > time.Hour:
			return out // a rollout that never ends (cannot happen here: onNoData wait with data)
		}
	}
}

// verdict is a judge result as the strategy sees it, with the analysis
// package's rule for "has data" (internal/analysis router.go): a decided
// verdict, or an inconclusive one with judge.MinRequests requests of
// each revision since the first look.
func verdict(r judge.Result, obs judge.Observation, now time.Time) strategy.Check {
	data := r.Verdict != judge.Inconclusive ||
		(obs.Canary.Requests >= judge.MinRequests && obs.Stable.Requests >= judge.MinRequests)
	return strategy.Check{Name: r.Check, Verdict: string(r.Verdict), Data: data, Reason: r.Reason, At: now}
}

// conditionAt combines the episodes under way at d after the promotion.
func conditionAt(eps []episode, d time.Duration) condition {
	c := calm
	for _, e := range eps {
		if d >= e.from && d < e.to {
			c.rate *= e.c.rate
			c.latency *= e.c.latency
			c.shift += e.c.shift
			c.errors += e.c.errors
		}
	}
	return c
}

// idleStable is the comparison lastgood made inside the window before the
// holdback, kept here to measure what it cost: once the stable revision
// had taken no request for 3 s, the canary was judged against the
// stable's last figures — an anytime-valid upper bound on the stable's
// metric at α/2, plus the tolerance, tested against the canary at α/2.
type idleStable struct {
	stable uint64
	since  time.Time
}

func (i *idleStable) judge(now time.Time, obs judge.Observation, errCheck, latCheck judge.Compare, alpha float64) bool {
	switch {
	case obs.Stable.Requests != i.stable || obs.Canary.Requests == 0:
		i.since = time.Time{}
	case i.since.IsZero():
		i.since = now
	}
	i.stable = obs.Stable.Requests
	if i.since.IsZero() || now.Sub(i.since) < 3*time.Second || obs.Stable.Requests < judge.MinRequests {
		return false
	}
	for _, c := range []judge.Compare{errCheck, latCheck} {
		inf := math.Inf(1)
		st := judge.Threshold{Check: c.Check, Metric: c.Metric, Max: &inf}.Judge(judge.Observation{Canary: obs.Stable}, alpha/2)
		upper := st.Evidence.Interval[1]
		if math.IsInf(upper, 0) || math.IsNaN(upper) {
			continue
		}
		bound := upper + c.MaxIncrease
		th := judge.Threshold{Check: c.Check, Metric: c.Metric, Max: &bound}
		if th.Judge(judge.Observation{Canary: obs.Canary}, alpha/2).Verdict == judge.Fail {
			return true
		}
	}
	return false
}
