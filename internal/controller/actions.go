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
	if a.migrating == a.rollout.ID {
		return fmt.Errorf("%w: %s: rollout #%d is running its migrations; %s it once they are done", ErrConflict, name, a.rollout.ID, verb)
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
// rolling it out as a blue-green switch that is judged like any promotion:
// a failure before the switch keeps what serves, one inside the window
// after it switches back. Undo to the warm previous stable is the classic
// return to the last known good: the switch happens before Undo returns,
// and its checks judge it in the window after. Any other undo switches
// once it is ready (warm replicas are handed over; otherwise the stored
// artifacts start again) and every check has looked at it. Content that
// was rolled back or aborted is refused, naming the incident, unless
// force is set (recorded in the rollout.started event).
// by is who asks (recorded in the events).
func (c *Controller) Undo(ctx context.Context, name string, to int, force bool, by string) (ApplyResult, error) {
	if to < 0 {
		return ApplyResult{}, fmt.Errorf("%w: --to-revision: want a revision number from 1, got %d", ErrInvalid, to)
	}
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
	bad, err := c.failedWith(ctx, a, target.Digest)
	if err != nil {
		return ApplyResult{}, err
	}
	var how rolloutStart
	if bad != nil {
		why := failedHow(a.app.Name, target.Number, *bad)
		if !force {
			return ApplyResult{}, fmt.Errorf("%w: %s: %s; use --force to undo to it anyway", ErrInvalid, name, why)
		}
		how.why = "forced with --force although " + why
		how.data = map[string]any{"force": true, "incident": incident.ID(a.app.Name, bad.Number), "rollout": bad.ID}
	}
	rev := target.Revision
	rev.Number, rev.Origin, rev.CopyOf = 0, "undo", target.Number
	if target.Origin == "undo" {
		rev.CopyOf = target.CopyOf
	}
	return c.createAndStartUndo(ctx, a, rev, how)
}

// failedWith returns the latest rollout of content with digest when it
// ended rolled back or aborted, nil when that content last went out well
// (or never did).
func (c *Controller) failedWith(ctx context.Context, a *appState, digest string) (*store.Rollout, error) {
	rollouts, err := c.cfg.Store.Rollouts(ctx, a.app.Name, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range rollouts {
		rev, err := c.revision(ctx, a, r.To)
		if errors.Is(err, store.ErrNotFound) {
			continue // pruned
		}
		if err != nil {
			return nil, err
		}
		if rev.Digest != digest || !r.Done() {
			continue
		}
		if r.Phase == store.PhaseRolledBack || r.Phase == store.PhaseAborted {
			return &r, nil
		}
		return nil, nil
	}
	return nil, nil
}

// failedHow says how rollout r of revision n's content ended, naming its
// incident: "revision 3 was rolled back in incident web-4 (check errors
// failed: …)".
func failedHow(app string, n int, r store.Rollout) string {
	verb := "rolled back"
	if r.Phase == store.PhaseAborted {
		verb = "aborted"
	}
	who := fmt.Sprintf("revision %d", n)
	if r.To != n {
		who = fmt.Sprintf("revision %d's content (as revision %d)", n, r.To)
	}
	msg := fmt.Sprintf("%s was %s in incident %s", who, verb, incident.ID(app, r.Number))
	if r.Reason != "" {
		msg += " (" + r.Reason + ")"
	}
	return msg
}

// createAndStartUndo creates the undo revision and, when replicas with the
// same content are running, hands them to it before the rollout starts.
func (c *Controller) createAndStartUndo(ctx context.Context, a *appState, rev store.Revision, how rolloutStart) (ApplyResult, error) {
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
	why := fmt.Sprintf("undo to the content of revision %d; starting it again, switched once it is ready and every check has looked at it", rev.CopyOf)
	if warm > 0 {
		if err := c.cfg.Engine.Adopt(a.app.Name, warm, created.Number); err != nil {
			return ApplyResult{}, fmt.Errorf("hand warm replicas of revision %d to %d: %w", warm, created.Number, err)
		}
		a.scaled[created.Number] = a.scaled[warm]
		delete(a.scaled, warm)
		how.instant = warm == a.warm && now.Before(a.warmUntil)
		why = fmt.Sprintf("undo to the content of revision %d, still warm: switched once every check has looked at it", rev.CopyOf)
		if how.instant {
			why = fmt.Sprintf("undo to the content of revision %d, the previous stable, still warm: traffic switch only; judged in the window after it", rev.CopyOf)
		}
	}
	if how.why != "" {
		why += "; " + how.why
	}
	how.why = why
	res, err := c.startRollout(ctx, a, created, strategy.Undo, how)
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
	if to != 0 {
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
	if o, ok := c.cfg.Engine.(Origin); ok {
		if m, err := c.manifest(ctx, a, a.app.Stable); err == nil {
			if why := o.NothingBefore(a.app.Name, a.app.Stable, m); why != "" {
				return nil, fmt.Errorf("%w: %s: %s", ErrConflict, a.app.Name, why)
			}
		}
	}
	return nil, fmt.Errorf("%w: %s: no earlier stable revision to return to; name one with --to-revision", ErrConflict, a.app.Name)
}
