package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// recover loads every app from the store and decides each unfinished
// rollout: a first release resumes (there is nothing to return to); any
// other rollout is rolled back to the stable revision, because the
// observations it was judged on are gone with the process. A promoted
// rollout whose rollback window is still open is decided by recoverWindow.
// The decision is recorded as an event before anything runs.
func (c *Controller) recover(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	for _, app := range apps {
		a := newAppState(app)
		c.apps[app.Name] = a
		if err := c.cfg.Traffic.Listen(app.Name, app.Listen); err != nil {
			c.recordNow(ctx, app.Name, "app.listen-failed", fmt.Sprintf("cannot listen on %s: %v", app.Listen, err))
		}
		rs, err := c.cfg.Store.Rollouts(ctx, app.Name, 1)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			continue
		}
		a.rollout = rs[0]
		if err := json.Unmarshal(a.rollout.State, &a.state); err != nil {
			return fmt.Errorf("decode rollout %d: %w", a.rollout.ID, err)
		}
		if a.state.Phase.Final() {
			if err := c.recoverWindow(ctx, a, now); err != nil {
				return err
			}
			continue
		}
		spec, err := c.spec(ctx, a, a.state.To)
		if err != nil {
			return err
		}
		next, evs := a.state, []strategy.Event(nil)
		if a.state.Kind == strategy.Initial {
			next.Progressed, next.StepStarted, next.LastReady = now, now, 0
			evs = []strategy.Event{{Type: "controller.recovered",
				Message: fmt.Sprintf("lastgood restarted during the first release of revision %d: resuming it", a.state.To)}}
		} else {
			next, evs = strategy.RollBack(spec, a.state, now, strategy.TriggerRestart,
				"lastgood restarted during the rollout; its observations are gone")
			evs = append([]strategy.Event{{Type: "controller.recovered",
				Message: fmt.Sprintf("lastgood restarted during rollout #%d: rolling back to revision %d", a.rollout.ID, a.state.From)}}, evs...)
		}
		if err := c.persist(ctx, a, next, evs); err != nil {
			return err
		}
	}
	return nil
}

// recordNow appends one app event outside a rollout transition.
func (c *Controller) recordNow(ctx context.Context, app, typ, msg string) {
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Time: c.cfg.Now(), App: app, Type: typ, Message: msg})
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.cfg.Log.Error("record event", "app", app, "type", typ, "err", err)
	}
}

// recoverWindow decides a promoted rollout whose rollback window is still
// open after a restart. The warm revision starts again and the checks
// that spend no α re-arm, but the statistical checks (compare, threshold)
// do not: their evidence was in memory, and starting them afresh would
// spend a second α on the same release. Without them the holdback has
// nothing to serve, so it ends. Both are recorded.
func (c *Controller) recoverWindow(ctx context.Context, a *appState, now time.Time) error {
	if !strategy.InWindow(a.state, now) || a.state.Kind == strategy.Undo {
		return nil
	}
	a.windowRestarted = a.rollout.ID
	next := a.state
	next.Restarted = now // its replicas start again: not ready yet is no failure
	msg := fmt.Sprintf("lastgood restarted inside the rollback window of rollout #%d: revision %d stays warm until %s; compare and threshold checks are not re-armed (their evidence was not kept, and a fresh test would spend α again)",
		a.rollout.ID, a.state.From, a.state.WarmUntil.UTC().Format(time.RFC3339))
	if next.Holdback > 0 {
		msg += fmt.Sprintf("; the %d%% held back on revision %d moves to revision %d", next.Holdback, next.From, next.To)
		next.Holdback = 0
	}
	return c.persist(ctx, a, next, []strategy.Event{{Type: "controller.recovered", Message: msg}})
}
