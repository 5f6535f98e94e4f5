package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// recover loads every app from the store and decides each unfinished
// rollout: a first release resumes (there is nothing to return to); any
// other rollout is rolled back to the stable revision, because the
// observations it was judged on are gone with the process. The decision is
// recorded as an event before anything runs.
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
