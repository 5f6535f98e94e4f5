// Package analysis runs a rollout's checks. It reads the signals — the
// router's per-revision counters, the new revision's replica logs and
// process resources, Prometheus, external webhooks and synthetic journeys —
// asks internal/judge for the statistical verdicts, and reports one Result
// per check per look to its caller, the controller, which decides what the
// verdicts mean for the rollout (internal/strategy).
//
// Every check runs in its own goroutine with its own ticker, so a slow
// Prometheus or webhook never delays the router checks that catch most
// failures. The router checks (compare, threshold) look every
// analysis.routerInterval (default 100ms): they read in-process counters,
// so a look costs microseconds, and their sequential tests (anytime-valid
// e-processes) stay valid however often they look, so looking often only
// cuts the delay of waiting for the next look. Every other check looks
// every analysis.interval (default 1s). A Runner is owned by one rollout
// and stops with its context.
package analysis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// Replica is what a check needs to know of one running replica.
type Replica struct {
	Revision int
	Addr     string // host:port
	PID      int    // also its process group: every replica leads its own
	Log      string // path of its log file; empty when the engine keeps none
	Ready    bool
	Started  time.Time
}

// Sources are where the checks read their signals.
type Sources struct {
	// Samples returns an app's cumulative router counts per revision.
	Samples func(app string) map[int]judge.Sample
	// Traces returns what the OTLP receiver aggregated of an app's
	// revision's spans (agents.go); nil or false: none.
	Traces func(app string, revision int) (otlp.Aggregate, bool)
	// Replicas returns an app's running replicas (all revisions).
	Replicas func(app string) []Replica
}

// Target is the rollout a Runner judges: Canary is the new revision,
// Stable the one it would return to.
type Target struct {
	App      string
	Rollout  int64
	Stable   int
	Canary   int
	Analysis manifest.Analysis
	// Routes is how many path templates the router counts apart
	// (router.routes): perRoute checks split their α over Routes+1.
	Routes int
	// Namespace and Pod place the new revision on an engine that has
	// namespaces and pods (controller.Scoper): the Prometheus templates
	// {{.Namespace}} and {{.Pod}}. Empty elsewhere.
	Namespace, Pod string
}

// Result is one check's verdict at one look.
type Result struct {
	judge.Result
	// Data reports whether the check saw enough to count at the end of an
	// analyze step: a decided verdict, or an inconclusive one with a
	// reasonable sample (judge.MinRequests requests of each revision for
	// the router checks, an answer for Prometheus and webhooks, a ready
	// replica for journeys, logs and resources).
	Data    bool      `json:"data"`
	At      time.Time `json:"at"`
	Rollout int64     `json:"rollout"`
}

// checker is one compiled check.
type checker interface {
	look(ctx context.Context, at time.Time) Result
	close()
}

// The cadences used when the manifest's are not positive (a Target built
// by hand rather than from a validated manifest).
const (
	fallbackInterval       = time.Second
	fallbackRouterInterval = 100 * time.Millisecond
)

// Runner runs the checks of one rollout.
type Runner struct {
	target Target
	checks []checker
	every  []time.Duration // how often checks[i] looks
	now    func() time.Time
}

// New compiles the checks of t. It fails only on checks that Validate
// rejects, which Apply refuses before a rollout exists.
func New(t Target, src Sources, now func() time.Time) (*Runner, error) {
	an := t.Analysis
	alpha := an.Alpha
	if alpha == 0 {
		alpha = judge.DefaultAlpha
	}
	statistical := 0
	for _, c := range an.Checks {
		if c.Compare != nil || c.Threshold != nil {
			statistical++
		}
	}
	share := judge.Budget(alpha, max(1, statistical))
	r := &Runner{target: t, now: now}
	interval, routerInterval := an.Interval.D(), an.RouterInterval.D()
	if interval <= 0 {
		interval = fallbackInterval
	}
	if routerInterval <= 0 {
		routerInterval = fallbackRouterInterval
	}
	start := now()
	for _, c := range an.Checks {
		ch, err := compile(t, src, c, share, start)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("check %s: %w", c.Name, err)
		}
		r.checks = append(r.checks, ch)
		if c.Compare != nil || c.Threshold != nil {
			r.every = append(r.every, routerInterval)
		} else {
			r.every = append(r.every, interval)
		}
	}
	return r, nil
}

// Run looks at every check once at once and then at the check's own
// cadence (routerInterval for compare and threshold, interval for the
// rest), calling report with each result, until ctx ends. report is called
// from several goroutines and must not block for long.
func (r *Runner) Run(ctx context.Context, report func(Result)) {
	var wg sync.WaitGroup
	for i, c := range r.checks {
		every := r.every[i]
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				res := c.look(ctx, r.now())
				if ctx.Err() != nil {
					return
				}
				res.Rollout = r.target.Rollout
				report(res)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	r.close()
}

func (r *Runner) close() {
	for _, c := range r.checks {
		c.close()
	}
}

// canaryReplicas returns the running replicas of the target's new revision.
func canaryReplicas(src Sources, t Target) []Replica {
	var out []Replica
	for _, rep := range src.Replicas(t.App) {
		if rep.Revision == t.Canary {
			out = append(out, rep)
		}
	}
	return out
}

// result starts a Result for check name.
func result(name string, at time.Time, v judge.Verdict, reason string, ev judge.Evidence) Result {
	return Result{Result: judge.Result{Check: name, Verdict: v, Evidence: ev, Reason: reason}, At: at}
}
