package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/otlp"
	"github.com/lastgood/lastgood/internal/strategy"
)

// analysisRun is the running analysis of one rollout: its Runner's
// goroutines report into latest, and the loop reads it at every tick.
type analysisRun struct {
	rollout int64
	cancel  context.CancelFunc
	order   []string // check names, in manifest order

	mu     sync.Mutex
	latest map[string]analysis.Result
	// recorded is the verdict of each check last written to the event log;
	// only the loop touches it.
	recorded map[string]judge.Verdict
}

// Results returns the latest result of each check looked at, in manifest
// order.
func (r *analysisRun) results() []analysis.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []analysis.Result
	for _, name := range r.order {
		if res, ok := r.latest[name]; ok {
			out = append(out, res)
		}
	}
	return out
}

// report keeps a result and wakes the loop when it changes what the loop
// would decide.
func (r *analysisRun) report(c *Controller, res analysis.Result) {
	r.mu.Lock()
	prev, seen := r.latest[res.Check]
	r.latest[res.Check] = res
	r.mu.Unlock()
	if !seen || prev.Verdict != res.Verdict || prev.Data != res.Data {
		c.Wake()
	}
}

// analyze starts or stops the analysis of a's latest rollout as the
// strategy asks, and returns the latest verdicts with the events of those
// that changed. c.mu is held.
func (c *Controller) analyze(ctx context.Context, a *appState, spec strategy.Spec, now time.Time) ([]strategy.Check, []strategy.Event) {
	want := strategy.Analyzing(spec, a.state, now)
	if r := a.run; r != nil && (!want || r.rollout != a.rollout.ID) {
		r.cancel()
		a.run = nil
	}
	if want && a.run == nil {
		c.startAnalysis(ctx, a)
	}
	if a.run == nil {
		return nil, nil
	}
	var checks []strategy.Check
	var evs []strategy.Event
	for _, res := range a.run.results() {
		checks = append(checks, strategy.Check{Name: res.Check, Verdict: string(res.Verdict), Data: res.Data, Reason: res.Reason, At: res.At})
		if was, ok := a.run.recorded[res.Check]; !ok && res.Verdict == judge.Inconclusive || was == res.Verdict {
			continue // the first inconclusive look is not news
		}
		a.run.recorded[res.Check] = res.Verdict
		evs = append(evs, strategy.Event{Type: "analysis.verdict",
			Message: fmt.Sprintf("check %s: %s: %s", res.Check, res.Verdict, res.Reason), Data: res})
	}
	return checks, evs
}

// startAnalysis starts the checks of a's latest rollout. They run under
// the loop's context, not the caller's: an apply request ends long before
// its rollout does.
func (c *Controller) startAnalysis(ctx context.Context, a *appState) {
	if c.runCtx == nil {
		return // the loop is not running (recovery not done)
	}
	m, err := c.manifest(ctx, a, a.state.To)
	if err != nil || m.Analysis == nil {
		return
	}
	an := *m.Analysis
	if a.windowRestarted == a.rollout.ID {
		an.Checks = slices.DeleteFunc(slices.Clone(an.Checks), func(ch manifest.Check) bool { return ch.Compare != nil || ch.Threshold != nil })
		if len(an.Checks) == 0 {
			return
		}
	}
	t := analysis.Target{App: a.app.Name, Rollout: a.rollout.ID, Stable: a.state.From, Canary: a.state.To, Analysis: an}
	t.Routes = m.RouteLimit()
	if sc, ok := c.cfg.Engine.(Scoper); ok {
		s := sc.Scope(a.app.Name, a.state.To)
		t.Namespace, t.Pod = s.Namespace, s.Pod
	}
	if a.analysisFailed == a.rollout.ID {
		return // recorded once; Apply validates checks, so this is rare
	}
	runner, err := analysis.New(t, c.sources(), c.cfg.Now)
	if err != nil {
		a.analysisFailed = a.rollout.ID
		c.recordNow(ctx, a.app.Name, "analysis.failed", fmt.Sprintf("cannot run the checks of revision %d: %v", a.state.To, err))
		return
	}
	run := &analysisRun{rollout: a.rollout.ID, latest: map[string]analysis.Result{}, recorded: map[string]judge.Verdict{}}
	for _, ch := range an.Checks {
		run.order = append(run.order, ch.Name)
	}
	rctx, cancel := context.WithCancel(c.runCtx)
	run.cancel = cancel
	a.run = run
	c.runs.Go(func() {
		runner.Run(rctx, func(res analysis.Result) { run.report(c, res) })
	})
}

// sources gives the checks the router's counters and the engine's
// replicas.
func (c *Controller) sources() analysis.Sources {
	return analysis.Sources{
		Samples: func(app string) map[int]judge.Sample {
			if c.cfg.Samples == nil {
				return nil
			}
			return c.cfg.Samples(app)
		},
		Traces: func(app string, rev int) (otlp.Aggregate, bool) {
			if c.cfg.Traces == nil {
				return otlp.Aggregate{}, false
			}
			return c.cfg.Traces(app, rev)
		},
		Replicas: func(app string) []analysis.Replica {
			var out []analysis.Replica
			for _, r := range c.cfg.Engine.Replicas(app) {
				if r.Stopping {
					continue
				}
				out = append(out, analysis.Replica{Revision: r.Revision, Addr: r.Addr, PID: r.PID, Log: r.Log, Ready: r.Ready, Started: r.Started})
			}
			return out
		},
	}
}

// Checks returns the latest verdicts of an app's running analysis, none
// when no analysis runs.
func (c *Controller) checks(a *appState) []analysis.Result {
	if a.run == nil {
		return nil
	}
	return a.run.results()
}
