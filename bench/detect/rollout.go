package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// setup is what every rollout of a run shares.
type setup struct {
	traffic traffic
	bounds  []time.Duration
	alpha   float64 // the rollout's false-rollback budget
	horizon int     // seconds a rollout is watched at most
	// look is the time between two looks of the checks (the product's
	// analysis.routerInterval); history how long the stable served all
	// the traffic before the canary started.
	look, history time.Duration
	// fixedN is the canary sample size at which the fixed-horizon test is
	// evaluated (once).
	fixedN uint64
	// flaggerErr and flaggerP99 are the Flagger-style thresholds: canary
	// error rate and p99 (seconds) over each 60 s interval.
	flaggerErr, flaggerP99 float64
}

// outcome is what one rollout showed.
type outcome struct {
	// detected: lastgood's judge failed a check; requests and seconds are
	// the canary requests and time until then; byLatency says which check.
	detected  bool
	requests  uint64
	seconds   float64
	byLatency bool
	// fixedReject: the fixed-horizon test rejected at fixedN (fixedRan
	// says whether the rollout reached fixedN before the horizon).
	fixedRan, fixedReject bool
	// flagger: the Flagger-style check rolled back, after flaggerRequests.
	flagger         bool
	flaggerRequests uint64
	flaggerSeconds  int
}

// rollout simulates one canary analysis, one look every s.look, until
// every method has decided or the horizon passes. Before the canary
// starts, the stable serves all the traffic for s.history: what the
// router has counted of it then is the judge's Observation.History.
func (s setup) rollout(sc scenario, seed uint64) outcome {
	rng := rand.New(rand.NewPCG(seed, 0x6c617374676f6f64))
	can, stab, hist := newRevision(s.bounds), newRevision(s.bounds), newRevision(s.bounds)
	hist.serve(rng, sc.stable, int(s.history.Seconds()*float64(s.traffic.canaryPerSec+s.traffic.stablePerSec)))
	perCheck := judge.Budget(s.alpha, 2)
	errCheck := judge.Compare{Check: "errors", Metric: judge.ErrorRate}
	latCheck := judge.Compare{Check: "latency", Metric: judge.LatencyP99}
	var errState, latState judge.RateState
	var out outcome
	perLook := s.look.Seconds()
	canPerLook, stabPerLook := int(float64(s.traffic.canaryPerSec)*perLook), int(float64(s.traffic.stablePerSec)*perLook)
	looksPerMinute := int(time.Minute / s.look)
	looks := int(time.Duration(s.horizon) * time.Second / s.look)
	for look := 1; look <= looks; look++ {
		can.serve(rng, sc.canary, canPerLook)
		stab.serve(rng, sc.stable, stabPerLook)
		elapsed := time.Duration(look) * s.look
		obs := judge.Observation{Canary: can.sample, Stable: stab.sample, History: hist.sample, Elapsed: elapsed}
		if !out.detected {
			var er, lr judge.Result
			errState, er = errCheck.Judge(errState, obs, perCheck)
			latState, lr = latCheck.Judge(latState, obs, perCheck)
			if er.Verdict == judge.Fail || lr.Verdict == judge.Fail {
				out.detected, out.requests, out.seconds = true, can.sample.Requests, elapsed.Seconds()
				out.byLatency = lr.Verdict == judge.Fail && er.Verdict != judge.Fail
			}
		}
		if !out.fixedRan && can.sample.Requests >= s.fixedN {
			out.fixedRan = true
			out.fixedReject = fixedTest(can.sample, stab.sample, perCheck)
		}
		if !out.flagger && look%looksPerMinute == 0 && s.flaggerCheck(can, stab) {
			out.flagger, out.flaggerRequests, out.flaggerSeconds = true, can.sample.Requests, int(elapsed.Seconds())
		}
		if out.detected && out.fixedRan && out.flagger {
			break
		}
	}
	return out
}

// flaggerCheck is one Flagger analysis run with failure threshold 1: the
// canary's error rate and p99 over the last interval against fixed
// thresholds.
func (s setup) flaggerCheck(can, stab *revision) bool {
	req, errs, lat := can.window()
	stab.window()
	if req == 0 {
		return false
	}
	rate := float64(errs) / float64(req)
	p99 := quantile(lat, 0.99)
	return rate > s.flaggerErr || p99 > s.flaggerP99
}

// fixedTest is the fixed-horizon comparator, evaluated once: a one-sided
// two-proportion z-test on errors and one on the share of requests slower
// than the stable's observed p99 (its bucket's upper bound), each at
// alpha; true if either rejects.
func fixedTest(can, stab judge.Sample, alpha float64) bool {
	z := normalQuantile(1 - alpha)
	if twoProportionZ(can.Errors, can.Requests, stab.Errors, stab.Requests) > z {
		return true
	}
	cut := upperBucket(stab.Latency, 0.99)
	cs := slowerThan(can.Latency, cut)
	ss := slowerThan(stab.Latency, cut)
	return twoProportionZ(cs, can.Latency.Count(), ss, stab.Latency.Count()) > z
}

// twoProportionZ is the pooled two-proportion z statistic for x1/n1 > x2/n2.
func twoProportionZ(x1, n1, x2, n2 uint64) float64 {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (p1 - p2) / se
}

// upperBucket returns the index of the bucket holding h's q-quantile.
func upperBucket(h judge.Histogram, q float64) int {
	rank := q * float64(h.Count())
	var cum float64
	for i, c := range h.Counts {
		cum += float64(c)
		if cum >= rank && c > 0 {
			return i
		}
	}
	return len(h.Counts) - 1
}

// slowerThan counts observations in buckets above index cut.
func slowerThan(h judge.Histogram, cut int) uint64 {
	var n uint64
	for _, c := range h.Counts[cut+1:] {
		n += c
	}
	return n
}

// quantile interpolates h's q-quantile in seconds, as the router does.
func quantile(h judge.Histogram, q float64) float64 {
	rank := q * float64(h.Count())
	var cum float64
	for i, c := range h.Counts {
		if c == 0 || cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		lower := 0.0
		if i > 0 {
			lower = h.Bounds[i-1].Seconds()
		}
		if h.Bounds[i] == math.MaxInt64 {
			return lower
		}
		return lower + (rank-cum)/float64(c)*(h.Bounds[i].Seconds()-lower)
	}
	return 0
}
