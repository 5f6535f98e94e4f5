package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// Fault rates of the two revisions.
const (
	stableErrorRate = "0.01"
	canaryErrorRate = "0.2"
	// stableErrorPercent is stableErrorRate for people.
	stableErrorPercent = "1"
)

// manifest is the app's manifest. The stable revision (round 0) fails 1%
// of requests; every canary fails 20%, with a seed and a ROUND value of
// its own (so each is a new revision), and its compare check looks every
// interval (analysis.routerInterval).
func manifest(a *harness.App, round int, interval time.Duration) string {
	env := fmt.Sprintf(`{FAULT_ERROR_RATE: "%s", FAULT_SEED: "1"}`, stableErrorRate)
	if round > 0 {
		env = fmt.Sprintf(`{FAULT_ERROR_RATE: "%s", FAULT_SEED: "%d", ROUND: "%d"}`, canaryErrorRate, 1000+round, round)
	}
	return a.Manifest(env, fmt.Sprintf(`strategy:
  canary:
    steps:
      - setWeight: 20
      - analyze: {for: 10m}
analysis:
  routerInterval: %s
  checks:
    - name: errors
      compare: {metric: errorRate, maxIncrease: 0.01}
`, interval))
}

// round is one bad canary as the benchmark drove it and lastgood recorded
// it. Times are the benchmark's clock except where said.
type round struct {
	N        int
	Interval time.Duration
	Revision int
	Rollout  int64
	Applied  time.Time // the apply call returned
	Ended    time.Time // the benchmark saw the rollout ended
	Settled  time.Time // the settle pause after it ended is over
	Phase    string
	Trigger  string
	Reason   string
	// Events are lastgood's events of the rollout, with its own times.
	Events []store.Event
}

// ok reports whether lastgood rolled the canary back because its analysis
// failed: the only right outcome.
func (r round) ok() bool {
	return r.Phase == string(strategy.RolledBack) && r.Trigger == strategy.TriggerAnalysis
}

// event returns the first event of type typ, and whether there is one.
func (r round) event(typ string) (store.Event, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			return e, true
		}
	}
	return store.Event{}, false
}

// rollbackLimit is how long a round waits for lastgood to end the rollout.
const rollbackLimit = 90 * time.Second

// warmup is the load's first part, before the first canary.
const warmup = 2 * time.Second

// measure delivers the stable revision, starts the load and runs every
// round under it. It fills r as far as it got, also when it fails.
func measure(ctx context.Context, cfg config, b *harness.Bench, r *report, progress io.Writer) error {
	c := b.Client
	a, err := harness.NewApp(filepath.Join(b.Root, "apps"), "web", b.Bins.SampleApp)
	if err != nil {
		return err
	}
	res, err := a.Apply(ctx, c, manifest(a, 0, time.Second), "stable")
	if err != nil {
		return err
	}
	if err := harness.WaitPromoted(ctx, c, a.Name, res.Rollout); err != nil {
		return fmt.Errorf("first release: %w", err)
	}
	r.Stable = res.Revision

	cpu, err := harness.StartCPU(b.Server.PID())
	if err != nil {
		return err
	}
	var ph harness.Phase
	ph.Set("warm-up")
	ld := harness.StartLoad(ctx, a.Listen, cfg.rate, cfg.workers, &ph)
	defer func() {
		if ld != nil {
			r.Load = ld.Stop()
		}
	}()
	if err := harness.Sleep(ctx, warmup); err != nil {
		return err
	}
	n := 0
	for _, interval := range cfg.intervals {
		fmt.Fprintf(progress, "rollback bench: %d bad canaries, router checks every %s, under %g requests/s\n", cfg.rollouts, interval, cfg.rate)
		for range cfg.rollouts {
			n++
			ph.Set("round %d", n)
			rd, err := oneRound(ctx, c, a, n, interval, cfg.settle)
			r.Rounds = append(r.Rounds, rd)
			if err != nil {
				return err
			}
		}
	}
	ph.Set("cool-down")
	r.Load, ld = ld.Stop(), nil
	if err := cpu.Stop(); err != nil {
		return err
	}
	r.CPU = *cpu
	return nil
}

// oneRound applies a bad canary, waits for lastgood to end its rollout,
// lets the traffic settle and reads the rollout's events.
func oneRound(ctx context.Context, c *api.Client, a *harness.App, n int, interval, settle time.Duration) (round, error) {
	rd := round{N: n, Interval: interval}
	res, err := a.Apply(ctx, c, manifest(a, n, interval), fmt.Sprintf("ROUND=%d", n))
	if err != nil {
		return rd, err
	}
	rd.Applied, rd.Revision, rd.Rollout = time.Now(), res.Revision, res.Rollout
	st, err := harness.WaitEnded(ctx, c, a.Name, res.Rollout, rollbackLimit)
	rd.Ended = time.Now()
	if err != nil {
		return rd, fmt.Errorf("round %d: %w", n, err)
	}
	rd.Phase, rd.Trigger, rd.Reason = st.Phase, st.Trigger, st.Reason
	if err := harness.Sleep(ctx, settle); err != nil {
		return rd, err
	}
	rd.Settled = time.Now()
	evs, err := c.Events(ctx, a.Name, 0)
	if err != nil {
		return rd, fmt.Errorf("round %d: events: %w", n, err)
	}
	for _, e := range evs {
		if e.Rollout == rd.Rollout {
			rd.Events = append(rd.Events, e)
		}
	}
	if !rd.ok() {
		return rd, fmt.Errorf("round %d: rollout #%d of revision %d ended %s by %q (%s), not rolled-back by analysis",
			n, rd.Rollout, rd.Revision, rd.Phase, rd.Trigger, rd.Reason)
	}
	return rd, nil
}
