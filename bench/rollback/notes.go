package main

import (
	"fmt"
	"io"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// canaryWeight is the canary's share of traffic, in the manifest as
// setWeight: 20.
const canaryWeight = 0.2

// writeNotes says, from the numbers of this run, what the time to roll
// back is made of.
func (r *report) writeNotes(w io.Writer, ms []measured) {
	groups := r.byInterval(ms)
	if len(groups) == 0 {
		return
	}
	perSecond := canaryWeight * r.cfg.rate
	fmt.Fprintf(w, "## What dominates the time\n\n")
	for _, g := range groups {
		t := pick(g, func(m measured) time.Duration { return m.ToRollback })
		d := pick(g, measured.detect)
		a := pick(g, measured.act)
		same, n := 0, 0
		var samples []time.Duration
		for _, m := range g {
			if !m.ok() {
				continue
			}
			n++
			samples = append(samples, time.Duration(m.Verdict.Evidence.CanarySamples))
			if int(m.Verdict.Evidence.CanarySamples) == m.Canary {
				same++
			}
		}
		s := harness.Percentiles(samples)
		fmt.Fprintf(w, "- **router checks every %s**: detection is all of it — first canary answer → the check's failing look "+
			"p50 %s, time to roll back p50 %s (the last canary answer comes just before that look); acting on the verdict (the controller's tick, persisting the transition, the "+
			"traffic switch) p50 %s. At its failing look the judge had counted p50 %d canary requests (min %d, max %d); at %g%% "+
			"of %g req/s (%.0f req/s on the canary) that sample takes %s to arrive, and the check only looks every %s, so the "+
			"time to roll back is the sample the judge needs, rounded up to the next look. In %d of %d rounds the judge's "+
			"count equals the blast radius: no request reached the canary after the switch.\n",
			g[0].Interval, fd(d.At(0.5)), fd(t.At(0.5)), fd(a.At(0.5)), int(s.At(0.5)), int(s.At(0)), int(s.Max()),
			100*canaryWeight, r.cfg.rate, perSecond, fd(time.Duration(float64(s.At(0.5))/perSecond*float64(time.Second))),
			g[0].Interval, same, n)
	}
	fmt.Fprintf(w, "- The last answer from the canary arrives a few milliseconds *before* the `rollout.rolled-back` event's time: "+
		"the canary gets a request every %s on average, so the last one before the switch is usually that much earlier; "+
		"requests in flight at the switch still complete on the canary and would show as a positive difference.\n",
		fd(time.Duration(float64(time.Second)/perSecond)))
	canary, failed := 0, 0
	for _, m := range ms {
		canary, failed = canary+m.Canary, failed+m.CanaryFailed
	}
	fmt.Fprintf(w, "- The blast radius is the judge's sample: it grows with the time to detect. %.1f%% of the canary's answers "+
		"failed (the fault is %s), against the stable's %s%% baseline, which does not move while a canary runs.\n\n",
		100*float64(failed)/float64(max(canary, 1)), canaryErrorRate, stableErrorPercent)
}
