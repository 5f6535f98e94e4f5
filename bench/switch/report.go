package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// report is everything one run measured.
type report struct {
	Rate            float64
	Workers         int
	Switches        int
	Load            loadResult
	ProbeFailures   []failure
	Run             switchRun
	Idle, Switched  harness.Memory // lastgood with one app: before the load, after the switches
	Fleet           fleetResult
	LeftAfterStop   []int // replica pids still alive after lastgood stopped
	Started, Ended  time.Time
	WarmUndos       int
	CPU             harness.CPUUse
	ServeStopErrors string
}

// Goals the report checks.
const (
	goalVisibleP99 = 5 * time.Millisecond
	goalRSS        = 60 << 20
)

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "# Blue-green switch and undo under load\n\n")
	fmt.Fprintf(w, "`go run ./bench/switch -switches %d -rate %g` on %s, %s in all.\n\n",
		r.Switches, r.Rate, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Ended.Sub(r.Started).Round(time.Second))
	harness.WriteMachine(w)
	r.writeSetup(w)
	r.writeTotals(w)
	r.writeLatency(w)
	r.writeMemory(w)
	r.writeCPU(w)
	r.writeFailures(w)
	r.writeGoals(w)
}

func (r *report) writeSetup(w io.Writer) {
	fmt.Fprintf(w, "## What ran\n\n")
	fmt.Fprintf(w, "- `lastgood serve` as a subprocess (local engine), the sample app with 2 replicas, "+
		"`blueGreen: {autoPromote: false}`, readiness `http /healthz` every 100ms, `rollback.window: 10m`.\n")
	fmt.Fprintf(w, "- Load: open loop, %g requests/s on a fixed schedule (request i due at start + i/rate) "+
		"from %d workers over keep-alive connections, GET / on the app's listen address, for the whole run.\n", r.Rate, r.Workers)
	fmt.Fprintf(w, "- %d rounds, each: apply a new revision (a new env value) → wait until its replicas are ready and "+
		"the rollout waits for promote → `promote` → `undo` (back to the revision just replaced, still warm). "+
		"Each promote and undo is timed, and a prober on its own keep-alive connection then sends requests back-to-back "+
		"until the target revision answers (`Lastgood-Revision`). Visible latency = promote/undo call returned → that answer.\n", r.Switches)
	fmt.Fprintf(w, "- Then %d more apps (2 replicas each, own ports) are deployed and promoted, each gets 100 requests, "+
		"and lastgood's memory is read from `/proc/<pid>/status`.\n\n", r.Fleet.Apps-1)
}

func (r *report) writeTotals(w io.Writer) {
	l := r.Load
	fmt.Fprintf(w, "## Requests\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| load requests sent | %d in %s (%.0f/s achieved) |\n", l.Sent, l.Elapsed.Round(time.Millisecond), float64(l.Sent)/l.Elapsed.Seconds())
	fmt.Fprintf(w, "| **load requests failed** | **%d** |\n", len(l.Failures))
	fmt.Fprintf(w, "| prober requests failed | %d |\n", len(r.ProbeFailures))
	fmt.Fprintf(w, "| requests to the extra apps failed | %d of %d |\n", len(r.Fleet.TrafficFails), r.Fleet.TrafficSent)
	fmt.Fprintf(w, "| revisions that answered the load | %d |\n", len(l.ByRev))
	fmt.Fprintf(w, "| sent more than 1ms after due, after the %s warm-up | %d (worst %s) |\n", l.Warmup, l.Late, harness.FormatDuration(l.MaxLate))
	p := harness.Percentiles(l.Latency)
	fmt.Fprintf(w, "| load latency from due time, after the warm-up | p50 %s, p90 %s, p99 %s, p99.9 %s, max %s |\n\n",
		harness.FormatDuration(p.At(0.50)), harness.FormatDuration(p.At(0.90)), harness.FormatDuration(p.At(0.99)), harness.FormatDuration(p.At(0.999)), harness.FormatDuration(p.Max()))
	writeSlow(w, l.Slow)
}

// writeSlow lists the load requests slower than slowRequest by what the
// benchmark was doing, with the switch number taken out.
func writeSlow(w io.Writer, ss []slow) {
	if len(ss) == 0 {
		fmt.Fprintf(w, "No load request after the warm-up took longer than %s.\n\n", slowRequest)
		return
	}
	digits := regexp.MustCompile(`[0-9]+`)
	type group struct {
		n   int
		max time.Duration
	}
	groups := map[string]*group{}
	var keys []string
	for _, s := range ss {
		k := digits.ReplaceAllString(s.Phase, "N")
		if groups[k] == nil {
			groups[k] = &group{}
			keys = append(keys, k)
		}
		groups[k].n++
		groups[k].max = max(groups[k].max, s.Latency)
	}
	slices.SortFunc(keys, func(a, b string) int { return groups[b].n - groups[a].n })
	fmt.Fprintf(w, "Load requests slower than %s (from due time), by what was happening:\n\n| phase | requests | slowest |\n|---|---|---|\n", slowRequest)
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %d | %s |\n", k, groups[k].n, harness.FormatDuration(groups[k].max))
	}
	fmt.Fprintln(w)
}

func (r *report) writeLatency(w io.Writer) {
	fmt.Fprintf(w, "## Switch latency\n\n| | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	row := func(name string, ds []time.Duration) {
		p := harness.Percentiles(ds)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", name, len(ds), harness.FormatDuration(p.At(0.5)), harness.FormatDuration(p.At(0.9)), harness.FormatDuration(p.At(0.99)), harness.FormatDuration(p.Max()))
	}
	pick := func(ss []switchSample, f func(switchSample) time.Duration) []time.Duration {
		var ds []time.Duration
		for _, s := range ss {
			ds = append(ds, f(s))
		}
		return ds
	}
	visible := func(s switchSample) time.Duration { return s.Visible }
	call := func(s switchSample) time.Duration { return s.Call }
	row("**switch visible** (promote returned → first answer from the new revision)", pick(r.Run.Switches, visible))
	row("**undo visible** (undo returned → first answer from the new revision)", pick(r.Run.Undos, visible))
	row("switch: the next request (the other new replica's first)", pick(r.Run.Switches, func(s switchSample) time.Duration { return s.Next[0] }))
	row("switch: the request after that", pick(r.Run.Switches, func(s switchSample) time.Duration { return s.Next[1] }))
	row("undo: the next request", pick(r.Run.Undos, func(s switchSample) time.Duration { return s.Next[0] }))
	row("promote API call", pick(r.Run.Switches, call))
	row("undo API call", pick(r.Run.Undos, call))
	row("apply → new replicas ready, waiting for promote", pick(r.Run.Switches, func(s switchSample) time.Duration { return s.Ready }))
	before := 0
	for _, s := range append(slices.Clone(r.Run.Switches), r.Run.Undos...) {
		before += s.Before
	}
	fmt.Fprintf(w, "\nAnswers from the old revision seen by the prober after a call returned: %d. "+
		"Undos reported as a warm traffic switch: %d of %d.\n\n", before, r.WarmUndos, len(r.Run.Undos))
}

func (r *report) writeMemory(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	f := r.Fleet
	fmt.Fprintf(w, "## Memory\n\n| | VmRSS | VmHWM (peak so far) |\n|---|---|---|\n")
	fmt.Fprintf(w, "| lastgood, 1 app, before the load | %s | %s |\n", mib(r.Idle.RSS), mib(r.Idle.HWM))
	fmt.Fprintf(w, "| lastgood, 1 app, after the switches, under load | %s | %s |\n", mib(r.Switched.RSS), mib(r.Switched.HWM))
	fmt.Fprintf(w, "| **lastgood, %d apps × 2 replicas, under load** | **%s** | %s |\n", f.Apps, mib(f.Lastgood.RSS), mib(f.Lastgood.HWM))
	fmt.Fprintf(w, "| the replicas (not lastgood): %d processes, sum | %s | |\n\n", f.Replicas, mib(f.ReplicaRSS))
	fmt.Fprintf(w, "Read after no replica was stopping any more (%d were when the %d apps were up; the last one exited %s later). "+
		"The replica count includes the first app's warm previous revision (kept for `rollback.window`).\n\n",
		f.Stopping, f.Apps, f.StoppingWait.Round(100*time.Millisecond))
}

func (r *report) writeCPU(w io.Writer) {
	c := r.CPU
	cpus := float64(c.Machine.Total) / float64(r.Load.Elapsed)
	fmt.Fprintf(w, "## CPU while the load ran\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| machine busy | %.0f%% of %.0f CPUs |\n", 100*float64(c.Machine.Busy)/float64(c.Machine.Total), cpus)
	fmt.Fprintf(w, "| lastgood (router, controller, API, probes, starting replicas) | %.1fs (%.0f µs per load request) |\n", c.Lastgood.Seconds(), float64(c.Lastgood.Microseconds())/float64(max(r.Load.Sent, 1)))
	fmt.Fprintf(w, "| this benchmark (load, prober, API calls) | %.1fs |\n", c.Bench.Seconds())
	fmt.Fprintf(w, "| everything else (replicas, other users of the machine) | %.1fs |\n", (c.Machine.Busy - c.Lastgood - c.Bench).Seconds())
	fmt.Fprintf(w, "| load average at start → end | %s → %s |\n\n", c.LoadAvgAtStart, c.LoadAvgAtEnd)
}

func (r *report) writeFailures(w io.Writer) {
	all := append(append(slices.Clone(r.Load.Failures), r.ProbeFailures...), r.Fleet.TrafficFails...)
	if len(all) == 0 && len(r.LeftAfterStop) == 0 && r.ServeStopErrors == "" {
		return
	}
	fmt.Fprintf(w, "## Failures\n\n")
	if len(all) > 0 {
		counts := map[string]int{}
		var keys []string
		for _, f := range all {
			k := fmt.Sprintf("%s | %s", f.Phase, f.What)
			if counts[k] == 0 {
				keys = append(keys, k)
			}
			counts[k]++
		}
		fmt.Fprintf(w, "| phase | error | count |\n|---|---|---|\n")
		for i, k := range keys {
			if i == 30 {
				fmt.Fprintf(w, "| … %d more kinds | | |\n", len(keys)-30)
				break
			}
			fmt.Fprintf(w, "| %s | %d |\n", k, counts[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.LeftAfterStop) > 0 {
		fmt.Fprintf(w, "Replica processes alive after lastgood stopped: %v\n\n", r.LeftAfterStop)
	}
	if r.ServeStopErrors != "" {
		fmt.Fprintf(w, "Stopping lastgood: %s\n\n", r.ServeStopErrors)
	}
}

func (r *report) writeGoals(w io.Writer) {
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	sw, un := visibles(r.Run.Switches), visibles(r.Run.Undos)
	failed := len(r.Load.Failures) + len(r.ProbeFailures) + len(r.Fleet.TrafficFails)
	fmt.Fprintf(w, "## Goals\n\n| goal | measured | |\n|---|---|---|\n")
	fmt.Fprintf(w, "| 0 failed requests | %d | %s |\n", failed, check(failed == 0))
	fmt.Fprintf(w, "| switch visible p99 < 5ms | %s | %s |\n", harness.FormatDuration(sw.At(0.99)), check(len(sw) > 0 && sw.At(0.99) < goalVisibleP99))
	fmt.Fprintf(w, "| undo visible p99 < 5ms | %s | %s |\n", harness.FormatDuration(un.At(0.99)), check(len(un) > 0 && un.At(0.99) < goalVisibleP99))
	fmt.Fprintf(w, "| lastgood VmRSS with %d apps < 60 MiB | %.1f MiB | %s |\n", r.Fleet.Apps,
		float64(r.Fleet.Lastgood.RSS)/(1<<20), check(r.Fleet.Lastgood.RSS > 0 && r.Fleet.Lastgood.RSS < goalRSS))
}

func visibles(ss []switchSample) harness.Sorted {
	var ds []time.Duration
	for _, s := range ss {
		ds = append(ds, s.Visible)
	}
	return harness.Percentiles(ds)
}
