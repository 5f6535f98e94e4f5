package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// TriggerDelete is the trigger of a rollout aborted by `lastgood delete
// --force`.
const TriggerDelete = "delete"

// DeleteResult says what a delete did.
type DeleteResult struct {
	App    string `json:"app"`
	Listen string `json:"listen"` // the address freed
	// Stopped are the revisions whose replicas were stopped.
	Stopped []int `json:"stopped"`
	// Stopping is how many replicas had not exited yet when Delete
	// stopped waiting for them; they exit by themselves.
	Stopping int `json:"stopping,omitempty"`
	// Aborted is the rollout that --force aborted, 0 for none.
	Aborted int64  `json:"aborted,omitempty"`
	Message string `json:"message"`
}

// Delete removes an app: its deletion is recorded (an app.deleted event)
// before anything stops, then its router stops listening, so its address
// is free when Delete returns, and its replicas are stopped; Delete waits
// for them until ctx ends or the drain timeout passes. Its revisions,
// rollouts, events and incidents are kept: applying the app again brings
// it back, its revision numbers going on from the kept ones. While a
// rollout is in progress Delete refuses (ErrConflict) unless force is
// set, which aborts the rollout first (trigger "delete"). By is who asks,
// for the event log.
func (c *Controller) Delete(ctx context.Context, name string, force bool, by string) (DeleteResult, error) {
	if err := c.writable(); err != nil {
		return DeleteResult{}, err
	}
	ctx = withActor(ctx, by)
	res, a, err := c.delete(ctx, name, force)
	if err != nil {
		return res, err
	}
	// The routers finish the requests in flight (on replicas still
	// running) before they return, which can take seconds: not under c.mu,
	// which every app's loop needs. Until the replicas are told to stop,
	// the name is closing, and an apply of it is refused.
	c.cfg.Traffic.Close(name)
	c.cfg.Traffic.Close(PreviewKey(name))
	// The delete is recorded: its replicas stop even if the caller has
	// gone away meanwhile.
	stop := context.WithoutCancel(ctx)
	c.mu.Lock()
	for _, rev := range res.Stopped {
		w, err := c.workload(stop, a, rev)
		if err == nil {
			err = c.cfg.Engine.Scale(stop, w, 0)
		}
		if err != nil {
			// recorded as deleted: a restart starts nothing of it
			c.cfg.Log.Error("stop a deleted app's revision", "app", name, "revision", rev, "err", err)
		}
	}
	delete(c.closing, name)
	c.mu.Unlock()
	res.Stopping = c.waitStopped(ctx, name, res.Stopped)
	if res.Stopping > 0 {
		res.Message += fmt.Sprintf("; %d replicas are still stopping", res.Stopping)
	}
	return res, nil
}

// delete records the deletion, forgets the app and marks its name
// closing; it returns the app as it was.
func (c *Controller) delete(ctx context.Context, name string, force bool) (DeleteResult, *appState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[name]
	if a == nil {
		return DeleteResult{}, nil, c.missing(ctx, name)
	}
	res := DeleteResult{App: name, Listen: a.app.Listen}
	if u := a.unrecorded; u != nil {
		return res, nil, fmt.Errorf("%w: %s: rollout #%d is %s (traffic is back on revision %d), waiting for the store to record it: %v",
			ErrConflict, name, a.rollout.ID, u.next.Phase, u.next.From, u.last)
	}
	if a.rollout.ID != 0 && !a.state.Phase.Final() {
		if !force {
			return res, nil, fmt.Errorf("%w: %s: rollout #%d to revision %d is %s; wait for it, `lastgood abort %s`, or `lastgood delete %s --force`",
				ErrConflict, name, a.rollout.ID, a.state.To, a.state.Phase, name, name)
		}
		if err := c.abortForDelete(ctx, a); err != nil {
			return res, nil, err
		}
		res.Aborted = a.rollout.ID
	}
	if a.run != nil {
		a.run.cancel()
		a.run = nil
	}
	res.Stopped = c.running(a)
	now := c.cfg.Now()
	res.Message = deleteMessage(a, res)
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteApp(name, now); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{Time: now, App: name, Type: "app.deleted", Message: res.Message, Actor: actorOf(ctx),
			Data: mustJSON(map[string]any{"listen": a.app.Listen, "stopped": res.Stopped, "aborted": res.Aborted,
				"latest": a.app.Latest, "stable": a.app.Stable})})
		return err
	})
	if err != nil {
		return res, nil, fmt.Errorf("delete %s: %w", name, err)
	}
	delete(c.apps, name)
	c.closing[name] = true
	return res, a, nil
}

// missing is the error for an app the controller does not run: deleted,
// or never applied.
func (c *Controller) missing(ctx context.Context, name string) error {
	if app, err := c.cfg.Store.App(ctx, name); err == nil && app.Deleted != nil {
		return fmt.Errorf("app %s: %w: it was deleted at %s (its history and incidents are kept)",
			name, ErrNotFound, app.Deleted.Local().Format(time.DateTime))
	}
	return fmt.Errorf("app %s: %w", name, ErrNotFound)
}

// abortForDelete ends a's rollout as aborted by the delete, persisted
// like any transition (its incident is written as for an abort).
func (c *Controller) abortForDelete(ctx context.Context, a *appState) error {
	spec, err := c.spec(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	next, evs, err := strategy.Abort(spec, a.state, c.cfg.Now())
	if err != nil {
		return fmt.Errorf("abort rollout #%d: %w", a.rollout.ID, err)
	}
	next.Trigger, next.Reason = TriggerDelete, "aborted by `lastgood delete --force`: the app is deleted"
	for i := range evs {
		if evs[i].Type == "rollout.aborted" {
			evs[i].Message = "aborted by `lastgood delete --force`: the app is deleted"
		}
	}
	return c.persist(ctx, a, next, evs)
}

// running lists the revisions of a with replicas or asked to have some.
// c.mu is held.
func (c *Controller) running(a *appState) []int {
	revs := map[int]bool{}
	for _, r := range c.cfg.Engine.Replicas(a.app.Name) {
		if !r.Stopping {
			revs[r.Revision] = true
		}
	}
	for rev, n := range a.scaled {
		if n > 0 {
			revs[rev] = true
		}
	}
	return slices.Sorted(maps.Keys(revs))
}

func deleteMessage(a *appState, res DeleteResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "app %s deleted: %s is free", a.app.Name, a.app.Listen)
	if len(res.Stopped) > 0 {
		var revs []string
		for _, r := range res.Stopped {
			revs = append(revs, fmt.Sprint(r))
		}
		fmt.Fprintf(&b, ", the replicas of revision %s stopped", strings.Join(revs, " and "))
	}
	if res.Aborted != 0 {
		fmt.Fprintf(&b, ", rollout #%d aborted", res.Aborted)
	}
	fmt.Fprintf(&b, "; its revisions, rollouts, events and incidents are kept (applied again, it goes on from revision %d)",
		a.app.Latest+1)
	return b.String()
}

// waitStopped waits, at most the drain timeout and while ctx lasts, until
// no replica of the given revisions of app runs, and returns how many
// still do.
func (c *Controller) waitStopped(ctx context.Context, app string, revs []int) int {
	deadline := time.NewTimer(c.cfg.DrainTimeout)
	defer deadline.Stop()
	for {
		left := 0
		for _, r := range c.cfg.Engine.Replicas(app) {
			if slices.Contains(revs, r.Revision) {
				left++
			}
		}
		if left == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return left
		case <-deadline.C:
			return left
		case <-time.After(20 * time.Millisecond):
		}
	}
}
