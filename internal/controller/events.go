package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// ReplicaEvent is something an engine saw happen to a replica, or, with
// no Replica, something the router saw of a revision.
type ReplicaEvent struct {
	Time     time.Time
	App      string
	Revision int
	Replica  string
	Type     string
	Message  string
	Data     map[string]any
}

// eventQueue holds engine events until the loop writes them to the store;
// engines call Record from their own goroutines and must never block.
type eventQueue struct {
	mu     sync.Mutex
	events []ReplicaEvent
}

// maxQueued bounds the queue; beyond it events are counted, not kept.
const maxQueued = 10000

// Record queues an engine event for the event log and wakes the loop.
func (c *Controller) Record(ev ReplicaEvent) {
	c.pending.mu.Lock()
	if len(c.pending.events) < maxQueued {
		c.pending.events = append(c.pending.events, ev)
	}
	c.pending.mu.Unlock()
	c.Wake()
}

// flushEvents writes queued engine events to the event log. c.mu is held.
func (c *Controller) flushEvents(ctx context.Context) {
	c.pending.mu.Lock()
	evs := c.pending.events
	c.pending.events = nil
	c.pending.mu.Unlock()
	if len(evs) == 0 || c.cfg.ReadOnly != "" {
		return // read-only serving records nothing
	}
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		for _, e := range evs {
			data := map[string]any{}
			msg := e.Message
			if e.Replica != "" { // not for the router's events
				data["replica"] = e.Replica
				msg = e.Replica + ": " + e.Message
			}
			for k, v := range e.Data {
				data[k] = v
			}
			var rollout int64
			if a := c.apps[e.App]; a != nil {
				rollout = a.rollout.ID
			}
			if _, err := tx.AppendEvent(store.Event{
				Time: e.Time, App: e.App, Rollout: rollout, Revision: e.Revision,
				Type: e.Type, Message: msg, Data: mustJSON(data),
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrInvalid) {
		// Kept for the next try (a full disk is not forever), up to the
		// queue's bound.
		c.pending.mu.Lock()
		c.pending.events = append(evs, c.pending.events...)
		if len(c.pending.events) > maxQueued {
			c.pending.events = c.pending.events[:maxQueued]
		}
		c.pending.mu.Unlock()
		c.logs.error(c.cfg.Log, "record/replica", "record replica events", "err", err, "events", len(evs))
		return
	}
	if err != nil {
		c.cfg.Log.Error("record replica events", "err", err, "events", len(evs))
		return
	}
	c.logs.ok(c.cfg.Log, "record/replica", "replica events are recorded again")
}

// appendEvents records strategy events of a rollout inside tx, as asked
// for by actor ("" when lastgood acts by itself). The event that ends a
// rollout with an incident names the incident.
func appendEvents(tx *store.Tx, now time.Time, r store.Rollout, revision int, evs []strategy.Event, actor string) error {
	for _, e := range evs {
		msg := e.Message
		if incident.Records(e.Type, r.Strategy) {
			msg += fmt.Sprintf(" (incident %s)", incident.ID(r.App, r.Number))
		}
		ev := store.Event{Time: now, App: r.App, Rollout: r.ID, Revision: revision, Type: e.Type, Message: msg, Actor: actor}
		if e.Data != nil {
			data, err := json.Marshal(e.Data)
			if err != nil {
				return fmt.Errorf("event %s: %w", e.Type, err)
			}
			ev.Data = data
		}
		if _, err := tx.AppendEvent(ev); err != nil {
			return err
		}
	}
	return nil
}

// incidentOf is the id of the incident of rollout r, "" when it has none
// (yet): it is in progress, or was promoted.
func incidentOf(r store.Rollout) string {
	switch {
	case r.Phase == store.PhaseRolledBack, r.Phase == store.PhaseAborted,
		r.Phase == store.PhasePromoted && r.Strategy == strategy.Undo:
		return incident.ID(r.App, r.Number)
	}
	return ""
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps of plain values
	}
	return b
}

type actorKey struct{}

// withActor marks ctx as a request by actor: the events written while
// handling it carry that name. Only the entry points of manual actions
// (Apply, Undo, act) set it, from their arguments.
func withActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// actorOf is the actor of ctx; "" for what the loop does by itself.
func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
