package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// goalToRollback is the goal: fault start → all traffic back on
// stable.
const goalToRollback = 5 * time.Second

// report is everything one run measured.
type report struct {
	cfg            config
	Stable         int // the stable revision
	Rounds         []round
	Load           harness.LoadRun
	CPU            harness.CPUUse
	Started, Ended time.Time
	LeftAfterStop  []int // replica pids alive after lastgood stopped
	StopError      error
	RunError       string // why the run stopped early, "" when it did not
}

// writeTo writes the report to path, or to stdout when path is "".
func (r *report) writeTo(path string) error {
	if path == "" {
		r.write(os.Stdout)
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.write(f)
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (r *report) write(w io.Writer) {
	ms := measureRounds(r.Load, r.Rounds, r.Stable)
	fmt.Fprintf(w, "# Automatic rollback of a bad canary under load\n\n")
	fmt.Fprintf(w, "`go run ./bench/rollback -rollouts %d -rate %g -intervals %s` on %s, %s in all.\n\n",
		r.cfg.rollouts, r.cfg.rate, intervalList(r.cfg.intervals), r.Started.UTC().Format("2006-01-02 15:04 MST"),
		r.Ended.Sub(r.Started).Round(time.Second))
	if r.RunError != "" {
		fmt.Fprintf(w, "**The run stopped early:** %s\n\n", r.RunError)
	}
	harness.WriteMachine(w)
	r.writeSetup(w)
	r.writeSummary(w, ms)
	r.writeBreakdown(w, ms)
	r.writeNotes(w, ms)
	writeExplanation(w, ms)
	r.writeRounds(w, ms)
	r.writeLoad(w)
	r.writeCPU(w)
	r.writeProcesses(w)
}

func intervalList(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, ",")
}

func (r *report) writeSetup(w io.Writer) {
	fmt.Fprintf(w, "## What ran\n\n")
	fmt.Fprintf(w, "- `lastgood serve` as a subprocess (local engine). The sample app, 2 replicas, readiness `http /healthz` every 100ms, "+
		"`strategy: canary: {steps: [{setWeight: 20}, {analyze: {for: 10m}}]}`, one check: "+
		"`{name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}`.\n")
	fmt.Fprintf(w, "- Stable revision %d: `FAULT_ERROR_RATE: \"%s\"`. Each round applies a new canary revision with "+
		"`FAULT_ERROR_RATE: \"%s\"`, its own `FAULT_SEED` and `ROUND`, and `analysis.routerInterval` as in the row; waits until lastgood ends "+
		"the rollout (it must be `rolled-back` with trigger `analysis`); then pauses %s.\n", r.Stable, stableErrorRate, canaryErrorRate, r.cfg.settle)
	fmt.Fprintf(w, "- Load: open loop, %g requests/s on a fixed schedule from %d workers over keep-alive connections, GET / on the app's "+
		"listen address, for the whole run; every response recorded with its time, status and `Lastgood-Revision`.\n", r.cfg.rate, r.cfg.workers)
	fmt.Fprintf(w, "- Per round, from the client's records: **fault start** = the first answer from the canary; **back** = the last answer from "+
		"the canary; **time to roll back** = back − fault start; **blast radius** = answers from the canary, and how many of them failed. "+
		"Cross-checked with the times of lastgood's own events (`traffic.weight`, the failing `analysis.verdict`, `rollout.rolled-back`).\n\n")
}

// byInterval groups the measured rounds by their analysis interval, in
// the order the intervals ran.
func (r *report) byInterval(ms []measured) [][]measured {
	var out [][]measured
	for _, d := range r.cfg.intervals {
		var g []measured
		for _, m := range ms {
			if m.Interval == d {
				g = append(g, m)
			}
		}
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// pick returns f of every round that lastgood rolled back and the client
// saw.
func pick(ms []measured, f func(measured) time.Duration) harness.Sorted {
	var ds []time.Duration
	for _, m := range ms {
		if m.ok() && m.Seen {
			ds = append(ds, f(m))
		}
	}
	return harness.Percentiles(ds)
}

// counts returns the p50 and max of n over the rounds.
func counts(ms []measured, n func(measured) int) (p50, most int) {
	var ds []time.Duration
	for _, m := range ms {
		ds = append(ds, time.Duration(n(m)))
	}
	s := harness.Percentiles(ds)
	return int(s.At(0.5)), int(s.Max())
}

// rolledBack counts the rounds that ended rolled back by the analysis.
func rolledBack(ms []measured) int {
	n := 0
	for _, m := range ms {
		if m.ok() {
			n++
		}
	}
	return n
}

// goalMet reports whether every round was rolled back by its analysis in
// less than the goal.
func goalMet(ms []measured) bool {
	t := pick(ms, func(m measured) time.Duration { return m.ToRollback })
	return len(t) == len(ms) && t.Max() < goalToRollback
}

func (r *report) writeSummary(w io.Writer, ms []measured) {
	fmt.Fprintf(w, "## Results\n\n| router interval | rolled back by analysis | **time to roll back** p50 / p90 / max | "+
		"**blast radius**: canary answers p50 / max | of them failed p50 / max | stable answers failed (baseline %s%%) | goal < %s |\n"+
		"|---|---|---|---|---|---|---|\n", stableErrorPercent, goalToRollback)
	for _, g := range r.byInterval(ms) {
		t := pick(g, func(m measured) time.Duration { return m.ToRollback })
		c50, cmax := counts(g, func(m measured) int { return m.Canary })
		f50, fmax := counts(g, func(m measured) int { return m.CanaryFailed })
		st, sf := 0, 0
		for _, m := range g {
			st, sf = st+m.Stable, sf+m.StableFailed
		}
		met := "**missed**"
		if goalMet(g) {
			met = "met"
		}
		fmt.Fprintf(w, "| %s | %d of %d | %s / %s / %s | %d / %d | %d / %d | %d of %d (%.2f%%) | %s |\n",
			g[0].Interval, rolledBack(g), len(g), fd(t.At(0.5)), fd(t.At(0.9)), fd(t.Max()), c50, cmax, f50, fmax,
			sf, st, 100*float64(sf)/float64(max(st, 1)), met)
	}
	fmt.Fprintln(w)
}

func fd(d time.Duration) string { return harness.FormatDuration(d) }

func (r *report) writeBreakdown(w io.Writer, ms []measured) {
	fmt.Fprintf(w, "## Where the time goes\n\nEvent times are lastgood's clock, response times the benchmark's (the same machine).\n\n"+
		"| router interval | span | p50 | p90 | max |\n|---|---|---|---|---|\n")
	for _, g := range r.byInterval(ms) {
		row := func(name string, f func(measured) time.Duration) {
			s := pick(g, f)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", g[0].Interval, name, fd(s.At(0.5)), fd(s.At(0.9)), fd(s.Max()))
		}
		row("`traffic.weight` event → first answer from the canary", func(m measured) time.Duration { return m.FaultStart.Sub(m.Weighted) })
		row("**detect**: first answer from the canary → the check's failing look (`analysis.verdict` `at`)", measured.detect)
		row("**act**: failing look → `rollout.rolled-back` event", measured.act)
		row("cross-check: last answer from the canary − `rollout.rolled-back` event", measured.backVsEvent)
		row("apply returned → rollout seen ended by the benchmark's polling", func(m measured) time.Duration { return m.Ended.Sub(m.Applied) })
		var ns []time.Duration
		for _, m := range g {
			if m.ok() {
				ns = append(ns, time.Duration(m.Verdict.Evidence.CanarySamples))
			}
		}
		s := harness.Percentiles(ns)
		fmt.Fprintf(w, "| %s | canary requests the judge had counted at the failing verdict | %d | %d | %d |\n",
			g[0].Interval, int(s.At(0.5)), int(s.At(0.9)), int(s.Max()))
	}
	fmt.Fprintln(w)
}

// writeExplanation quotes lastgood on the first rollback it made.
func writeExplanation(w io.Writer, ms []measured) {
	for _, m := range ms {
		if !m.ok() || m.VerdictMsg == "" {
			continue
		}
		e := m.Verdict.Evidence
		fmt.Fprintf(w, "## lastgood's explanation of round %d\n\n", m.N)
		fmt.Fprintf(w, "The failing verdict event (`analysis.verdict`):\n\n> %s\n\n", m.VerdictMsg)
		fmt.Fprintf(w, "Its evidence: %s (%s); canary %d requests at %.2f%% errors, stable %d at %.2f%%, effect %+.2f%% "+
			"[%.2f%%, %.2f%%], tolerance %.2f%%, log e-value %.2f, alpha %g.\n\n",
			e.Method.Name, e.Method.Citation, e.CanarySamples, 100*e.Canary, e.StableSamples, 100*e.Stable, 100*e.Effect,
			100*e.Interval[0], 100*e.Interval[1], 100*e.Threshold, e.LogEValue, e.Alpha)
		fmt.Fprintf(w, "The `rollout.rolled-back` event:\n\n> %s\n\n", m.RolledMsg)
		return
	}
}

func (r *report) writeRounds(w io.Writer, ms []measured) {
	fmt.Fprintf(w, "## Every round\n\n| round | interval | revision | ended | time to roll back | canary answers (failed) | "+
		"stable answers (failed) | judge's canary sample | last canary answer − rolled-back event |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range ms {
		ended := m.Phase
		if m.Trigger != "" {
			ended += " by " + m.Trigger
		}
		fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %d (%d) | %d (%d) | %d | %s |\n", m.N, m.Interval, m.Revision, ended,
			fd(m.ToRollback), m.Canary, m.CanaryFailed, m.Stable, m.StableFailed, m.Verdict.Evidence.CanarySamples, fd(m.backVsEvent()))
		if m.NoAnswer+m.Other > 0 {
			fmt.Fprintf(w, "| | | | %d requests without an answer, %d answers from neither revision | | | | | |\n", m.NoAnswer, m.Other)
		}
	}
	fmt.Fprintln(w)
}

func (r *report) writeLoad(w io.Writer) {
	l := r.Load
	late, noAnswer := 0, 0
	var lat []time.Duration
	for _, x := range l.Responses {
		if x.Sent-x.Due > time.Millisecond && x.Due >= warmup {
			late++
		}
		if x.Status == 0 {
			noAnswer++
		} else if x.Due >= warmup {
			lat = append(lat, x.Latency())
		}
	}
	p := harness.Percentiles(lat)
	fmt.Fprintf(w, "## Load\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| requests sent | %d in %s (%.0f/s achieved) |\n", len(l.Responses), l.Elapsed.Round(time.Millisecond), float64(len(l.Responses))/l.Elapsed.Seconds())
	fmt.Fprintf(w, "| without an HTTP answer | %d |\n", noAnswer)
	fmt.Fprintf(w, "| sent more than 1ms after due, after the %s warm-up | %d |\n", warmup, late)
	fmt.Fprintf(w, "| latency from due time, after the warm-up | p50 %s, p99 %s, max %s |\n\n", fd(p.At(0.5)), fd(p.At(0.99)), fd(p.Max()))
}

func (r *report) writeCPU(w io.Writer) {
	c := r.CPU
	if c.Machine.Total == 0 {
		return
	}
	fmt.Fprintf(w, "## CPU while the load ran\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| machine busy | %.0f%% of %.0f CPUs |\n", 100*float64(c.Machine.Busy)/float64(c.Machine.Total), float64(c.Machine.Total)/float64(r.Load.Elapsed))
	fmt.Fprintf(w, "| lastgood | %.1fs |\n| this benchmark | %.1fs |\n", c.Lastgood.Seconds(), c.Bench.Seconds())
	fmt.Fprintf(w, "| load average at start → end | %s → %s |\n\n", c.LoadAvgAtStart, c.LoadAvgAtEnd)
}

func (r *report) writeProcesses(w io.Writer) {
	fmt.Fprintf(w, "## After lastgood stopped\n\nReplica processes still alive: %d.", len(r.LeftAfterStop))
	if r.StopError != nil {
		fmt.Fprintf(w, " Stopping lastgood: %v.", r.StopError)
	}
	fmt.Fprintln(w)
}
