package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

type action func(spec strategy.Spec, s strategy.State, now time.Time) (strategy.State, []strategy.Event, error)

// act applies a manual action to an app's rollout in progress, persists
// it and reconciles at once, so its effect on traffic has happened when
// act returns. The events it writes name by as their actor.
func (c *Controller) act(ctx context.Context, name, verb, by string, f action) error {
	if err := c.writable(); err != nil {
		return err
	}
	ctx = withActor(ctx, by)
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[name]
	if a == nil {
		return fmt.Errorf("app %s: %w", name, ErrNotFound)
	}
	if u := a.unrecorded; u != nil {
		return fmt.Errorf("%w: %s: rollout #%d is %s (traffic is back on revision %d), waiting for the store to record it: %v",
			ErrConflict, name, a.rollout.ID, u.next.Phase, u.next.From, u.last)
	}
	if a.rollout.ID == 0 || a.state.Phase.Final() {
		return fmt.Errorf("%w: %s has no rollout in progress to %s", ErrConflict, name, verb)
	}
	spec, err := c.spec(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	next, evs, err := f(spec, a.state, now)
	switch {
	case errors.Is(err, strategy.ErrNoPromote), errors.Is(err, strategy.ErrNotPaused):
		return fmt.Errorf("%w: %s: %v", ErrConflict, name, err)
	case err != nil:
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	if err := c.persist(ctx, a, next, evs); err != nil {
		if !backToStable(a.state, next) {
			return err
		}
		c.switchUnrecorded(ctx, a, next, evs, now, err, c.cfg.Engine.Replicas(name))
		if a.unrecorded.applied.IsZero() {
			return fmt.Errorf("%s %s: not recorded yet, and revision %d has no ready replica to take the traffic: lastgood keeps trying: %w", verb, name, next.From, err)
		}
		return fmt.Errorf("%s %s: traffic is back on revision %d, but the store could not record it yet; lastgood keeps trying: %w", verb, name, next.From, err)
	}
	return c.reconcile(ctx, name)
}

// Promote skips the rollout's current wait; full skips every remaining
// canary step. By is who asks (the API token's name), for the event log;
// so for every manual action.
func (c *Controller) Promote(ctx context.Context, app string, full bool, by string) error {
	return c.act(ctx, app, "promote", by, func(spec strategy.Spec, s strategy.State, now time.Time) (strategy.State, []strategy.Event, error) {
		return strategy.Promote(spec, s, now, full)
	})
}

// Abort returns all traffic to the stable revision and ends the rollout.
func (c *Controller) Abort(ctx context.Context, app, by string) error {
	return c.act(ctx, app, "abort", by, strategy.Abort)
}

// Pause holds the rollout where it is.
func (c *Controller) Pause(ctx context.Context, app, by string) error {
	return c.act(ctx, app, "pause", by, func(_ strategy.Spec, s strategy.State, now time.Time) (strategy.State, []strategy.Event, error) {
		return strategy.Pause(s, now)
	})
}

// Resume continues a paused rollout.
func (c *Controller) Resume(ctx context.Context, app, by string) error {
	return c.act(ctx, app, "resume", by, func(_ strategy.Spec, s strategy.State, now time.Time) (strategy.State, []strategy.Event, error) {
		return strategy.Resume(s, now)
	})
}

// Undo returns an app to earlier content by making a new revision equal to
// revision to (0: the revision that was stable before the current one) and
// rolling it out with an immediate switch. When that content still runs
// warm — inside the rollback window — the switch happens before Undo
// returns; otherwise the stored artifacts start again first.
func (c *Controller) Undo(ctx context.Context, name string, to int, by string) (ApplyResult, error) {
	if err := c.writable(); err != nil {
		return ApplyResult{}, err
	}
	ctx = withActor(ctx, by)
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[name]
	if a == nil {
		return ApplyResult{}, fmt.Errorf("app %s: %w", name, ErrNotFound)
	}
	if !a.state.Phase.Final() {
		return ApplyResult{}, fmt.Errorf("%w: %s: rollout #%d to revision %d is %s; `lastgood abort %s` returns to revision %d",
			ErrConflict, name, a.rollout.ID, a.state.To, a.state.Phase, name, a.state.From)
	}
	target, err := c.undoTarget(ctx, a, to)
	if err != nil {
		return ApplyResult{}, err
	}
	stable, err := c.revision(ctx, a, a.app.Stable)
	if err != nil {
		return ApplyResult{}, err
	}
	if target.Digest == stable.Digest {
		return ApplyResult{App: name, Revision: stable.Number,
			Message: fmt.Sprintf("%s: revision %d already serves the content of revision %d; nothing to undo", name, stable.Number, target.Number)}, nil
	}
	rev := target.Revision
	rev.Number, rev.Origin, rev.CopyOf = 0, "undo", target.Number
	if target.Origin == "undo" {
		rev.CopyOf = target.CopyOf
	}
	return c.createAndStartUndo(ctx, a, rev)
}

// createAndStartUndo creates the undo revision and, when replicas with the
// same content are running, hands them to it before the rollout starts.
func (c *Controller) createAndStartUndo(ctx context.Context, a *appState, rev store.Revision) (ApplyResult, error) {
	warm := c.warmRevision(ctx, a, rev.Digest)
	now := c.cfg.Now()
	var created store.Revision
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		var err error
		rev.Created = now
		if created, err = tx.CreateRevision(rev); err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{Time: now, App: a.app.Name, Revision: created.Number, Type: "revision.created", Actor: actorOf(ctx),
			Message: fmt.Sprintf("revision %d created by undo: the content of revision %d", created.Number, rev.CopyOf),
			Data:    mustJSON(map[string]any{"digest": created.Digest, "copyOf": rev.CopyOf})})
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("store undo revision: %w", err)
	}
	if a.app, err = c.cfg.Store.App(ctx, a.app.Name); err != nil {
		return ApplyResult{}, err
	}
	why := fmt.Sprintf("undo to the content of revision %d; starting it again", rev.CopyOf)
	if warm > 0 {
		if err := c.cfg.Engine.Adopt(a.app.Name, warm, created.Number); err != nil {
			return ApplyResult{}, fmt.Errorf("hand warm replicas of revision %d to %d: %w", warm, created.Number, err)
		}
		a.scaled[created.Number] = a.scaled[warm]
		delete(a.scaled, warm)
		why = fmt.Sprintf("undo to the content of revision %d, still warm: traffic switch only", rev.CopyOf)
	}
	res, err := c.startRollout(ctx, a, created, strategy.Undo, why)
	res.Created = true
	if err == nil {
		// an undo is a manual rollback: its incident is written once it is promoted
		id := incident.ID(a.app.Name, a.rollout.Number)
		res.Message += fmt.Sprintf("; incident %s (`lastgood postmortem %s`)", id, id)
	}
	return res, err
}

// warmRevision returns a running revision of a whose content has digest,
// other than the stable one, or 0.
func (c *Controller) warmRevision(ctx context.Context, a *appState, digest string) int {
	seen := map[int]bool{}
	for _, r := range c.cfg.Engine.Replicas(a.app.Name) {
		if seen[r.Revision] || r.Stopping || r.Revision == a.app.Stable {
			continue
		}
		seen[r.Revision] = true
		if rev, err := c.revision(ctx, a, r.Revision); err == nil && rev.Digest == digest {
			return r.Revision
		}
	}
	return 0
}

// undoTarget finds the revision an undo returns to.
func (c *Controller) undoTarget(ctx context.Context, a *appState, to int) (*revision, error) {
	if to > 0 {
		r, err := c.revision(ctx, a, to)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s has no revision %d (its revisions are 1 to %d, older ones pruned by `history`)",
				ErrInvalid, a.app.Name, to, a.app.Latest)
		}
		return r, err
	}
	rollouts, err := c.cfg.Store.Rollouts(ctx, a.app.Name, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range rollouts {
		if r.Phase == string(strategy.Promoted) && r.To == a.app.Stable {
			if r.From == 0 {
				break
			}
			return c.revision(ctx, a, r.From)
		}
	}
	return nil, fmt.Errorf("%w: %s: no earlier stable revision to return to; name one with --to-revision", ErrConflict, a.app.Name)
}
