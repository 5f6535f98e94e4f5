package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// manifest is the app's manifest with SWITCH=n in the environment (a new
// n is a new revision).
func manifest(a *harness.App, n int) string {
	return a.Manifest(fmt.Sprintf(`{SWITCH: "%d"}`, n), `strategy:
  blueGreen: {autoPromote: false}
rollback:
  progressDeadline: 1m
  window: 10m
`)
}

// apply applies the app's manifest with SWITCH=n and returns the rollout
// it started.
func apply(ctx context.Context, c *api.Client, a *harness.App, n int) (controller.ApplyResult, error) {
	return a.Apply(ctx, c, manifest(a, n), fmt.Sprintf("SWITCH=%d", n))
}

// waitPromotePause waits until rollout id waits for promote: its new
// replicas are ready.
func waitPromotePause(ctx context.Context, c *api.Client, app string, id int64) error {
	_, err := harness.WaitFor(ctx, c, app, time.Minute, fmt.Sprintf("rollout #%d waiting for promote", id),
		func(st controller.AppStatus) (bool, error) {
			r := st.Rollout
			if r == nil || r.ID != id {
				return false, nil
			}
			if strategy.Phase(r.Phase).Final() {
				return false, fmt.Errorf("rollout #%d %s (%s) before promote: %w", id, r.Phase, r.Reason, harness.ErrRolloutEnded)
			}
			return r.Detail.Phase == strategy.Paused && r.Detail.PauseReason == strategy.PausePromote, nil
		})
	return err
}
