package judge

import "math"

// A comparison's data are the two revisions' requests since its first
// look: only what both served at the same time is compared, so a change
// that hits both (a dependency outage, a traffic peak) cannot fail the
// canary. But the stable revision usually served for a long while before
// the rollout began, and that history says a lot about what the canary
// will be compared with: the stable's error rate and where its latency
// quantile lies. The comparison uses it for its bets and cut-offs only —
// choices made before the data they score — never as data: a bet informed
// by history that turns out stale (the stable drifted) loses power, it
// does not make the test wrong. The e-values stay e-values for any
// predictable choice (Ramdas, Grünwald, Vovk & Shafer 2023, §3–4).
//
// With it, the first look can already decide: the fixed-ratio bets know
// the stable's rate before the canary has served a request, and the
// latency test has a cut-off for the first block instead of spending it on
// finding one. In bench/detect that is worth one look everywhere, and more
// at small rates, where the stable's rate takes longest to learn.

// historyCap is the most requests of history a comparison weighs; a longer
// history is scaled down to it. Ten thousand requests pin a 1% rate to
// about ±20% and a p99 to within a bucket or two. The weight then shrinks
// as the stable serves during the rollout — to historyCap minus the
// stable's requests since the first look (weighed) — so that a history
// that no longer describes the stable (an incident an hour ago, a drift)
// costs power only early, and what the stable does now decides the bets
// once it has served as much.
const historyCap = 10_000

// scaleTo returns h with its counts scaled down so that it holds at most
// limit requests (and histogram observations), rounding.
func scaleTo(h Sample, limit uint64) Sample {
	out := Sample{Requests: h.Requests, Errors: min(h.Errors, h.Requests)}
	if len(h.Latency.Bounds) == len(h.Latency.Counts) && len(h.Latency.Counts) > 0 {
		out.Latency = Histogram{Bounds: h.Latency.Bounds, Counts: append([]uint64(nil), h.Latency.Counts...)}
	}
	if out.Requests > limit {
		f := float64(limit) / float64(out.Requests)
		out.Requests = limit
		out.Errors = uint64(math.Round(float64(out.Errors) * f))
	}
	if n := out.Latency.Count(); n > limit {
		f := float64(limit) / float64(n)
		for i, c := range out.Latency.Counts {
			out.Latency.Counts[i] = uint64(math.Round(float64(c) * f))
		}
	}
	return out
}

// weighed returns the history scaled to historyCap minus the n stable
// requests seen since the first look, none once n reaches historyCap.
func weighed(h Sample, n uint64) Sample {
	return scaleTo(h, room(n))
}

// room is how many requests of history weigh once the stable has served
// n since the first look.
func room(n uint64) uint64 {
	return historyCap - min(n, historyCap)
}

// prime keeps the history of the first look; later looks' histories are
// ignored, so a caller that passed a history overlapping the judged
// counts later could not feed the test its own data.
func (st RateState) prime(h Sample) RateState {
	if !st.Primed {
		st.History, st.Primed = scaleTo(h, historyCap), true
	}
	return st
}

// rebase returns the state a test goes on from when a revision's counts
// went backwards (its counters were reset): the evidence so far stands and
// the e-processes keep multiplying from where they are, so a reset never
// starts a fresh test with a fresh α. The requests between the last look
// and the reset are never scored (a block with e-value 1, a bet not
// made); the counts, and the latency test's cut-offs, start again from the
// counts of this look.
func (st RateState) rebase() RateState {
	st.Canary, st.Stable = Counts{}, Counts{}
	st.Latency = LatencyCut{}
	st.Restarts++
	return st
}

// merged returns the stable's histogram since the first look with its
// history added, for choosing a cut-off; the window alone when the layouts
// differ.
func merged(history, window Histogram) Histogram {
	if len(history.Counts) != len(window.Counts) || len(history.Bounds) != len(window.Bounds) {
		return window
	}
	out := Histogram{Bounds: window.Bounds, Counts: make([]uint64, len(window.Counts))}
	for i := range out.Counts {
		if history.Bounds[i] != window.Bounds[i] {
			return window
		}
		out.Counts[i] = history.Counts[i] + window.Counts[i]
	}
	return out
}
