package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// recover loads every app from the store and decides each rollout the
// way strategy.Recover says: a first release resumes, any other unfinished
// rollout is rolled back, a promoted rollout inside its window stays
// promoted with a readiness grace. The decision is recorded as an event
// before anything runs. Each app's address is bound at once, but its
// router accepts connections only once the revision it serves has a ready
// replica (see holdListener), so clients of a restart wait in the kernel's
// accept queue instead of getting 503.
func (c *Controller) recover(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	c.watching = now
	for _, app := range apps {
		a := newAppState(app)
		c.apps[app.Name] = a
		if err := c.recoverRollout(ctx, a, now); err != nil {
			return err
		}
		c.holdListener(ctx, a, now)
	}
	return nil
}

// recoverRollout decides a's latest rollout after a restart.
func (c *Controller) recoverRollout(ctx context.Context, a *appState, now time.Time) error {
	rs, err := c.cfg.Store.Rollouts(ctx, a.app.Name, 1)
	if err != nil || len(rs) == 0 {
		return err
	}
	a.rollout = rs[0]
	if err := json.Unmarshal(a.rollout.State, &a.state); err != nil {
		return fmt.Errorf("decode rollout %d: %w", a.rollout.ID, err)
	}
	// this engine counts restarts from 0 (the target watch after a
	// rollback counts them from there)
	a.state.FromRestartsBefore = 0
	if err := c.recoverSchema(ctx, a, now); err != nil {
		return fmt.Errorf("recover the database of rollout %d: %w", a.rollout.ID, err)
	}
	if a.state.Phase.Final() && !strategy.InWindow(a.state, now) {
		return nil
	}
	spec, err := c.spec(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	next, evs := strategy.Recover(spec, a.state, now)
	if a.state.Phase.Final() {
		// its statistical checks are not armed again (strategy.Recover)
		a.windowRestarted = a.rollout.ID
	}
	if strategy.InWindow(next, now) {
		// the window of this promotion outlives a later rollout, as it
		// did before the restart
		a.warm, a.warmUntil = next.From, next.WarmUntil
	}
	return c.persist(ctx, a, next, evs)
}

// Binder is implemented by Traffic that can take an address without
// accepting on it yet: connections wait in the kernel's accept queue until
// Listen(key, addr), and Route works at once. Without it, a restart
// listens at once (and answers 503 until a replica is ready).
type Binder interface {
	Bind(key, addr string) error
}

// holdListener binds a's address. When a revision is to serve, the router
// does not accept until it has a ready replica, or until that revision's
// readiness grace has passed (see acceptHeld); otherwise it accepts at
// once and answers 503.
func (c *Controller) holdListener(ctx context.Context, a *appState, now time.Time) {
	name, addr := a.app.Name, a.app.Listen
	grace, serves := c.servingGrace(ctx, a)
	b, binds := c.cfg.Traffic.(Binder)
	var err error
	if serves && binds {
		if err = b.Bind(name, addr); err == nil {
			a.holdUntil, a.holdFor = now.Add(grace), grace
		}
	} else {
		err = c.cfg.Traffic.Listen(name, addr)
	}
	if err != nil {
		c.recordNow(ctx, name, "app.listen-failed", fmt.Sprintf("cannot listen on %s: %s", addr, listenError(err)))
	}
}

// servingGrace returns the readiness grace of the revision that a's plan
// sends traffic to, and whether there is one.
func (c *Controller) servingGrace(ctx context.Context, a *appState) (time.Duration, bool) {
	if a.rollout.ID == 0 {
		return 0, false
	}
	plan := strategy.Desired(a.state)
	rev := 0
	for r, w := range plan.Weights {
		if w > 0 && plan.Replicas[r] > 0 && r > rev {
			rev = r
		}
	}
	if plan.ByReady {
		for r, n := range plan.Replicas {
			if n > 0 && r > rev {
				rev = r
			}
		}
	}
	if rev == 0 {
		return 0, false
	}
	spec, err := c.spec(ctx, a, rev)
	if err != nil {
		return 0, false
	}
	return spec.ReadinessGrace, true
}

// acceptHeld starts accepting on a held listener once the routing table
// last set for the app has a ready replica, or when the hold's deadline
// has passed, which is recorded: requests then get 503 until a replica is
// ready, as they would without the hold. c.mu is held.
func (c *Controller) acceptHeld(ctx context.Context, a *appState, now time.Time) {
	if a.holdUntil.IsZero() {
		return
	}
	ready := slices.ContainsFunc(a.routes[a.app.Name].Routes, func(r Route) bool { return r.Weight > 0 && len(r.Backends) > 0 })
	if !ready && now.Before(a.holdUntil) {
		return
	}
	a.holdUntil = time.Time{}
	name, addr := a.app.Name, a.app.Listen
	if err := c.cfg.Traffic.Listen(name, addr); err != nil {
		c.recordNow(ctx, name, "app.listen-failed", fmt.Sprintf("cannot listen on %s: %s", addr, listenError(err)))
		return
	}
	if !ready {
		c.recordNow(ctx, name, EventNotReadyServing, fmt.Sprintf(
			"no replica was ready %s after lastgood restarted (the readiness grace): accepting connections on %s anyway; requests get 503 until one is ready",
			a.holdFor, addr))
	}
}

// EventNotReadyServing records that a restarted lastgood started
// accepting an app's connections before any replica was ready.
const EventNotReadyServing = "app.accepting-unready"

// recordNow appends one app event outside a rollout transition.
func (c *Controller) recordNow(ctx context.Context, app, typ, msg string) {
	if c.cfg.ReadOnly != "" {
		// read-only serving records nothing; the log says what it would have
		c.cfg.Log.Warn("not recorded (read-only serving)", "app", app, "type", typ, "message", msg)
		return
	}
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Time: c.cfg.Now(), App: app, Type: typ, Message: msg})
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.logs.error(c.cfg.Log, "record/"+typ, "record event", "app", app, "type", typ, "err", err)
	}
}
