package analysis

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/logs"
	"github.com/lastgood/lastgood/internal/signal/resources"
)

// logsCheck counts the lines of the new revision's replica logs that
// match an expression, since the rollout's analysis started (a replica
// started later is read from its beginning).
type logsCheck struct {
	name     string
	src      Sources
	target   Target
	re       *regexp.Regexp
	max      int
	started  time.Time
	counters map[string]*logs.Counter // by log path
	seen     map[string]int64         // matches at the previous look, by log path
}

func (c *logsCheck) look(_ context.Context, at time.Time) Result {
	reps := canaryReplicas(c.src, c.target)
	var matches int64
	var last []string
	for _, rep := range reps {
		if rep.Log == "" {
			continue
		}
		ctr := c.counters[rep.Log]
		if ctr == nil {
			var opts []logs.Option
			if !rep.Started.Before(c.started) {
				opts = append(opts, logs.FromStart())
			}
			ctr = logs.NewCounter(rep.Log, c.re, opts...)
			c.counters[rep.Log] = ctr
		}
		n, err := ctr.Poll()
		if err != nil {
			continue
		}
		matches += n.Matches
		if n.Matches > c.seen[rep.Log] {
			last = append(last, n.Last...) // the newest matches come last
		} else {
			last = slices.Concat(n.Last, last)
		}
		c.seen[rep.Log] = n.Matches
	}
	ev := judge.Evidence{Method: judge.Method{Name: "log line count"}, Metric: "logMatches", Unit: "lines",
		CanarySamples: uint64(len(reps)), Canary: float64(matches), Effect: float64(matches), Threshold: float64(c.max), PValue: 1}
	if len(last) > 0 {
		ev.Warnings = []string{"last matching line: " + last[len(last)-1]}
	}
	if len(reps) == 0 {
		r := result(c.name, at, judge.Inconclusive, fmt.Sprintf("no replica of revision %d runs yet", c.target.Canary), ev)
		return r
	}
	r := result(c.name, at, judge.Pass, fmt.Sprintf("%d lines match %q, at most %d allowed", matches, c.re, c.max), ev)
	if matches > int64(c.max) {
		r.Verdict = judge.Fail
		r.Reason = fmt.Sprintf("%d log lines of revision %d match %q, more than %d", matches, c.target.Canary, c.re, c.max)
		if len(last) > 0 {
			r.Reason += "; last: " + last[len(last)-1]
		}
	}
	r.Data = true
	return r
}

func (c *logsCheck) close() {
	for _, ctr := range c.counters {
		ctr.Close()
	}
}

// cpuLooks is how many looks in a row a replica must use more CPU than
// maxCPU before the check fails: a start-up burst is not a regression.
const cpuLooks = 3

// resourcesCheck bounds the memory, CPU and file descriptors of each of
// the new revision's replicas.
type resourcesCheck struct {
	name   string
	src    Sources
	target Target
	limits manifest.Resources
	meters map[int]*resources.Meter // by process group
	over   map[int]int              // looks in a row over maxCPU, by group
}

func (c *resourcesCheck) look(_ context.Context, at time.Time) Result {
	reps := canaryReplicas(c.src, c.target)
	var worst []string
	var maxRSS int64
	var maxCPU float64
	var maxFDs, seen int
	live := map[int]bool{}
	for _, rep := range reps {
		if rep.PID <= 0 {
			continue
		}
		u, err := resources.Sample(rep.PID)
		if err != nil {
			continue
		}
		seen++
		live[rep.PID] = true
		m := c.meters[rep.PID]
		if m == nil {
			m = &resources.Meter{}
			c.meters[rep.PID] = m
		}
		rt := m.Observe(at, u)
		maxRSS, maxCPU, maxFDs = max(maxRSS, rt.RSS), max(maxCPU, rt.CPU), max(maxFDs, rt.FDs)
		l := c.limits
		if l.MaxRSS > 0 && rt.RSS > int64(l.MaxRSS) {
			worst = append(worst, fmt.Sprintf("replica pid %d uses %s of memory, more than %s", rep.PID, bytes(rt.RSS), bytes(int64(l.MaxRSS))))
		}
		if l.MaxFDs > 0 && rt.FDs > l.MaxFDs {
			worst = append(worst, fmt.Sprintf("replica pid %d has %d open files, more than %d", rep.PID, rt.FDs, l.MaxFDs))
		}
		if l.MaxCPU > 0 && rt.Interval > 0 {
			if rt.CPU > l.MaxCPU {
				c.over[rep.PID]++
			} else {
				c.over[rep.PID] = 0
			}
			if c.over[rep.PID] >= cpuLooks {
				worst = append(worst, fmt.Sprintf("replica pid %d used %.2f cores for %d looks in a row, more than %g", rep.PID, rt.CPU, cpuLooks, l.MaxCPU))
			}
		}
	}
	for pid := range c.meters {
		if !live[pid] {
			delete(c.meters, pid)
			delete(c.over, pid)
		}
	}
	ev := judge.Evidence{Method: judge.Method{Name: "process resources from /proc"}, Metric: "resources",
		CanarySamples: uint64(seen), PValue: 1,
		Warnings: []string{fmt.Sprintf("largest: memory %s, CPU %.2f cores, %d open files", bytes(maxRSS), maxCPU, maxFDs)}}
	if seen == 0 {
		return result(c.name, at, judge.Inconclusive, fmt.Sprintf("no live replica of revision %d to measure", c.target.Canary), ev)
	}
	r := result(c.name, at, judge.Pass, fmt.Sprintf("%d replicas within bounds", seen), ev)
	if len(worst) > 0 {
		r.Verdict, r.Reason = judge.Fail, strings.Join(worst, "; ")
	}
	r.Data = true
	return r
}

func (c *resourcesCheck) close() {}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
}
