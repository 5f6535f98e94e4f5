package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
)

// switchSample is one measured traffic switch.
type switchSample struct {
	Call    time.Duration // the API call's own latency
	Visible time.Duration // call returned → first answer from the target revision
	Before  int           // answers from the old revision after the call returned
	Next    [2]time.Duration
	Ready   time.Duration // apply → new replicas ready (switches only)
}

// switchRun is the switch phase: n blue-green switches, each followed by
// an undo to the revision it replaced, which is still warm.
type switchRun struct {
	Switches, Undos []switchSample
}

// runSwitches alternates a blue-green switch (apply SWITCH=i, wait until
// the new replicas are ready and the rollout waits for promote, promote)
// and an undo back to the revision the switch replaced.
func runSwitches(ctx context.Context, c *api.Client, a *harness.App, p *prober, ph *harness.Phase, n int, progress io.Writer) (switchRun, error) {
	var run switchRun
	for i := 1; i <= n; i++ {
		s, err := oneSwitch(ctx, c, a, p, ph, i)
		if err != nil {
			return run, err
		}
		run.Switches = append(run.Switches, s)
		u, err := oneUndo(ctx, c, a, p, ph, i)
		if err != nil {
			return run, err
		}
		run.Undos = append(run.Undos, u)
		if i%10 == 0 {
			fmt.Fprintf(progress, "switch bench: %d/%d switches and undos\n", i, n)
		}
	}
	ph.Set("after the switches")
	return run, nil
}

func oneSwitch(ctx context.Context, c *api.Client, a *harness.App, p *prober, ph *harness.Phase, i int) (switchSample, error) {
	var s switchSample
	ph.Set("switch %d: apply and start new replicas", i)
	applied := time.Now()
	res, err := apply(ctx, c, a, i)
	if err != nil {
		return s, err
	}
	if err := waitPromotePause(ctx, c, a.Name, res.Rollout); err != nil {
		return s, fmt.Errorf("switch %d: %w", i, err)
	}
	s.Ready = time.Since(applied)
	ph.Set("switch %d: promote to revision %d", i, res.Revision)
	if _, err := p.warm(ctx, ph); err != nil {
		return s, fmt.Errorf("switch %d: prober before promote: %w", i, err)
	}
	called := time.Now()
	if _, err := c.Action(ctx, a.Name, "promote", api.ActionRequest{}); err != nil {
		return s, fmt.Errorf("switch %d: promote: %w", i, err)
	}
	returned := time.Now()
	s.Call = returned.Sub(called)
	pr, err := p.firstFrom(ctx, res.Revision, returned, ph)
	if err != nil {
		return s, fmt.Errorf("switch %d: %w", i, err)
	}
	s.Visible, s.Before, s.Next = pr.Visible, pr.Before, pr.Next
	ph.Set("switch %d: after promote to revision %d", i, res.Revision)
	if err := harness.WaitPromoted(ctx, c, a.Name, res.Rollout); err != nil {
		return s, fmt.Errorf("switch %d: %w", i, err)
	}
	return s, nil
}

func oneUndo(ctx context.Context, c *api.Client, a *harness.App, p *prober, ph *harness.Phase, i int) (switchSample, error) {
	var s switchSample
	ph.Set("undo %d", i)
	if _, err := p.warm(ctx, ph); err != nil {
		return s, fmt.Errorf("undo %d: prober before undo: %w", i, err)
	}
	called := time.Now()
	res, err := c.Action(ctx, a.Name, "undo", api.ActionRequest{})
	if err != nil {
		return s, fmt.Errorf("undo %d: %w", i, err)
	}
	returned := time.Now()
	s.Call = returned.Sub(called)
	ph.Set("undo %d: to revision %d", i, res.Revision)
	pr, err := p.firstFrom(ctx, res.Revision, returned, ph)
	if err != nil {
		return s, fmt.Errorf("undo %d (%s): %w", i, res.Message, err)
	}
	s.Visible, s.Before, s.Next = pr.Visible, pr.Before, pr.Next
	if res.Rollout != 0 {
		if err := harness.WaitPromoted(ctx, c, a.Name, res.Rollout); err != nil {
			return s, fmt.Errorf("undo %d: %w", i, err)
		}
	}
	return s, nil
}
