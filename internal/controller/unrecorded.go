package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// The controller persists every transition before acting on it, with one
// exception, written down in docs/decisions.md: a decision to send traffic
// back to the stable revision (an automatic rollback, an abort) moves the
// traffic at once even when the store cannot record it — a full disk, an
// I/O error. Holding a failing canary's traffic until the disk has room
// would trade the users' requests for the bookkeeping. The decision, with
// its original time, is recorded as soon as the store can take it, tried
// again at every tick, followed by a rollout.recorded-late event that says
// when traffic moved and how long the record waited. Only the traffic
// moves early: replicas are stopped and scaled once the decision is
// recorded. Were lastgood to stop before that, the next start rolls the
// unfinished rollout back anyway (recover.go), so nothing the early switch
// did is ever undone.

// TypeRecordedLate is the event that follows a rollback whose traffic
// switch was applied before the store could record it.
const TypeRecordedLate = "rollout.recorded-late"

// unrecorded is a decision to go back to the stable revision that the
// store has not recorded yet.
type unrecorded struct {
	next    strategy.State
	evs     []strategy.Event
	decided time.Time
	// applied is when traffic went back; zero while the stable revision
	// has no ready replica to take it (the switch then waits too).
	applied  time.Time
	attempts int
	first    error // the store's error at the decision
	last     error
}

// Unrecorded is a rollback applied to traffic but not yet recorded, as
// Status shows it.
type Unrecorded struct {
	Phase    strategy.Phase `json:"phase"`
	Revision int            `json:"revision"` // where traffic goes back to
	Decided  time.Time      `json:"decided"`
	Applied  *time.Time     `json:"applied,omitempty"`
	Attempts int            `json:"attempts"`
	Error    string         `json:"error"`
}

// backToStable reports whether going from s to next sends the traffic
// back to the stable revision.
func backToStable(s, next strategy.State) bool {
	return (next.Phase == strategy.RolledBack || next.Phase == strategy.Aborted) && next.Phase != s.Phase
}

// switchUnrecorded moves a's traffic as next asks, although the store
// refused to record next (err), and keeps next to record later. c.mu is
// held.
func (c *Controller) switchUnrecorded(ctx context.Context, a *appState, next strategy.State, evs []strategy.Event, decided time.Time, err error, replicas []Replica) {
	a.unrecorded = &unrecorded{next: next, evs: evs, decided: decided, attempts: 1, first: err, last: err}
	if a.run != nil {
		a.run.cancel() // decided: stop looking
		a.run = nil
	}
	c.switchBack(ctx, a, replicas)
	c.logs.warn(c.cfg.Log, "unrecorded/"+a.app.Name, "traffic moved back before the store could record the decision",
		"app", a.app.Name, "rollout", a.rollout.ID, "to", next.From, "phase", next.Phase, "err", err)
}

// switchBack points a's traffic at the ready replicas the unrecorded
// decision asks for, once there is at least one.
func (c *Controller) switchBack(ctx context.Context, a *appState, replicas []Replica) {
	u := a.unrecorded
	plan := strategy.Desired(u.next)
	t := c.table(ctx, a, u.next, plan, replicas)
	ready := false
	for _, r := range t.Routes {
		ready = ready || len(r.Backends) > 0
	}
	if !ready {
		return // nothing to go back to yet: keep what serves
	}
	c.route(a, a.app.Name, t)
	if u.applied.IsZero() {
		u.applied = c.cfg.Now()
	}
}

// routedState is the state a's traffic follows: an unrecorded decision
// once its switch is applied, else the recorded state.
func (c *Controller) routedState(a *appState) strategy.State {
	if u := a.unrecorded; u != nil && !u.applied.IsZero() {
		return u.next
	}
	return a.state
}

// recordLate tries again to record a's unrecorded decision, at the time
// it was made, and then carries it out in full. c.mu is held.
func (c *Controller) recordLate(ctx context.Context, a *appState) error {
	u := a.unrecorded
	replicas := c.cfg.Engine.Replicas(a.app.Name)
	c.switchBack(ctx, a, replicas) // follow the stable's replicas as they change
	u.attempts++
	recorded := c.cfg.Now()
	late := store.Event{Time: recorded, App: a.app.Name, Rollout: a.rollout.ID, Revision: u.next.To,
		Type: TypeRecordedLate, Message: u.message(recorded), Data: mustJSON(u.data(recorded))}
	if err := c.persistAt(ctx, a, u.next, u.evs, u.decided, late); err != nil {
		u.last = err
		return nil // logged once by switchUnrecorded; the status shows it
	}
	a.unrecorded = nil
	c.logs.ok(c.cfg.Log, "unrecorded/"+a.app.Name, "the decision is recorded", "app", a.app.Name, "rollout", a.rollout.ID,
		"waited", recorded.Sub(u.decided).Round(time.Millisecond).String(), "attempts", u.attempts)
	return c.execute(ctx, a, replicas)
}

func (u *unrecorded) message(recorded time.Time) string {
	what := "rollback"
	if u.next.Phase == strategy.Aborted {
		what = "abort"
	}
	if u.applied.IsZero() {
		return fmt.Sprintf("this %s was decided at %s and recorded %s later: the store refused to record it (%v), and revision %d had no ready replica to take the traffic meanwhile",
			what, clock(u.decided), recorded.Sub(u.decided).Round(time.Millisecond), u.first, u.next.From)
	}
	return fmt.Sprintf("traffic went back to revision %d at %s, %s after this %s was decided and %s before the store could record it (%v; %d attempts)",
		u.next.From, clock(u.applied), u.applied.Sub(u.decided).Round(time.Microsecond), what,
		recorded.Sub(u.applied).Round(time.Millisecond), u.first, u.attempts)
}

func (u *unrecorded) data(recorded time.Time) map[string]any {
	d := map[string]any{
		"decided": u.decided, "recorded": recorded, "recordDelayMs": recorded.Sub(u.decided).Milliseconds(),
		"attempts": u.attempts, "error": u.first.Error(), "revision": u.next.From,
	}
	if !u.applied.IsZero() {
		d["applied"] = u.applied
		d["switchMs"] = float64(u.applied.Sub(u.decided).Microseconds()) / 1000
	}
	return d
}

func (u *unrecorded) status() *Unrecorded {
	s := &Unrecorded{Phase: u.next.Phase, Revision: u.next.From, Decided: u.decided, Attempts: u.attempts, Error: u.last.Error()}
	if !u.applied.IsZero() {
		t := u.applied
		s.Applied = &t
	}
	return s
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }
