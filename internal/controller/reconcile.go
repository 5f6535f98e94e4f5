package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// reconcile advances one app's latest rollout by what the engine shows,
// persists the transition, then makes the engine and the traffic match the
// plan. c.mu is held.
func (c *Controller) reconcile(ctx context.Context, name string) error {
	a := c.apps[name]
	switch {
	case a == nil:
		return nil
	case a.frozen != nil:
		return c.serveFrozen(ctx, a)
	case a.rollout.ID == 0:
		return nil
	case a.migrating == a.rollout.ID:
		return nil // migrations run first: nothing moves until they are done
	case a.unrecorded != nil:
		return c.recordLate(ctx, a)
	}
	spec, err := c.spec(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	replicas := c.cfg.Engine.Replicas(name)
	now := c.cfg.Now()
	checks, verdicts := c.analyze(ctx, a, spec, now)
	all := c.samples(name)
	obs := strategy.Observation{
		Now:      now,
		From:     count(replicas, a.state.From),
		To:       count(replicas, a.state.To),
		Checks:   checks,
		Health:   c.health(ctx, a, spec, all),
		Watching: c.watching,
	}
	obs.From.Requests, obs.To.Requests = all[a.state.From].Requests, all[a.state.To].Requests
	next, evs, ok := c.degradedSchema(a, spec, &obs)
	if !ok {
		next, evs = strategy.Next(spec, a.state, obs)
	}
	evs = append(verdicts, evs...)
	if err := c.persist(ctx, a, next, evs); err != nil {
		if backToStable(a.state, next) {
			// The one exception to persisting before acting: see
			// unrecorded.go.
			c.switchUnrecorded(ctx, a, next, evs, now, err, replicas)
			return nil
		}
		return err
	}
	if a.run != nil && !strategy.Analyzing(spec, a.state, now) {
		a.run.cancel() // decided: stop looking at once
		a.run = nil
	}
	if err := c.execute(ctx, a, replicas); err != nil {
		return err
	}
	c.settleSchema(ctx, a) // after execute: traffic is back on the stable revision
	return nil
}

func count(rs []Replica, rev int) strategy.Count {
	var n strategy.Count
	mostRestarts := -1
	for _, r := range rs {
		if r.Revision != rev || r.Stopping {
			continue
		}
		n.Running++
		if r.Ready {
			n.Ready++
		}
		n.Restarts += r.Restarts
		if n.Unrunnable == "" {
			n.Unrunnable = r.Unrunnable
		}
		if r.LastExit != "" && r.Restarts > mostRestarts {
			n.LastExit, mostRestarts = r.LastExit, r.Restarts
		}
	}
	return n
}

// persist stores a new state of a's latest rollout with its events, in one
// transaction, before anything acts on it. When the rollout is promoted the
// app's stable revision moves with it.
func (c *Controller) persist(ctx context.Context, a *appState, next strategy.State, evs []strategy.Event) error {
	return c.persistAt(ctx, a, next, evs, c.cfg.Now())
}

// persistAt is persist with the time the transition happened (now, or
// when a rollback recorded late was decided); extra events carry their
// own times and follow the transition's.
func (c *Controller) persistAt(ctx context.Context, a *appState, next strategy.State, evs []strategy.Event, now time.Time, extra ...store.Event) error {
	if next == a.state && len(evs) == 0 && len(extra) == 0 {
		return nil
	}
	r := a.rollout
	raw, err := json.Marshal(next)
	if err != nil {
		return err
	}
	r.State, r.Phase, r.Step = raw, string(next.Phase), next.Step
	r.Trigger, r.Reason, r.Updated = next.Trigger, next.Reason, now
	if next.Phase.Final() && (r.Ended == nil || next.Phase != a.state.Phase) {
		ended := next.Ended
		r.Ended = &ended
	}
	app := a.app
	if next.Phase == strategy.Promoted && app.Stable != next.To {
		app.Stable, app.Updated = next.To, now
	}
	if next.InWindow && a.state.Phase == strategy.Promoted && app.Stable == next.To {
		// rolled back inside the rollback window: the warm revision is
		// stable again
		app.Stable, app.Updated = next.From, now
	}
	err = c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateRollout(r); err != nil {
			return err
		}
		if app != a.app {
			if err := tx.PutApp(app); err != nil {
				return err
			}
		}
		if err := appendEvents(tx, now, r, next.To, evs, actorOf(ctx)); err != nil {
			return err
		}
		for _, e := range extra {
			if _, err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist rollout %d: %w", r.ID, err)
	}
	if next.Phase == strategy.Promoted && a.state.Phase != strategy.Promoted && next.FromReplicas > 0 {
		a.warm, a.warmUntil = next.From, next.WarmUntil
	}
	if next.InWindow && a.warm == next.From {
		a.warm, a.warmUntil = 0, time.Time{}
	}
	a.app, a.rollout, a.state = app, r, next
	return nil
}

// execute makes the engine run what the state asks for and points the
// traffic at the ready replicas. It is idempotent.
func (c *Controller) execute(ctx context.Context, a *appState, replicas []Replica) error {
	return c.executePlan(ctx, a, a.state, strategy.Desired(a.state), replicas)
}

// executePlan carries out plan, the plan of state s.
func (c *Controller) executePlan(ctx context.Context, a *appState, s strategy.State, plan strategy.Plan, replicas []Replica) error {
	name := a.app.Name
	// Stop revisions the plan no longer names (older ones), unless it is
	// the warm previous revision of the last promotion, whose window a
	// later rollout does not close.
	now := c.cfg.Now()
	for _, r := range replicas {
		if _, ok := plan.Replicas[r.Revision]; ok || r.Stopping {
			continue
		}
		if r.Revision == a.warm && now.Before(a.warmUntil) {
			continue
		}
		plan.Replicas[r.Revision] = 0
	}
	for _, rev := range slices.Sorted(maps.Keys(plan.Replicas)) {
		n := plan.Replicas[rev]
		if done, ok := a.scaled[rev]; ok && done == n {
			continue // the engine converges by itself; tell it only changes
		}
		w, err := c.workload(ctx, a, rev)
		if err != nil {
			return err
		}
		if err := c.cfg.Engine.Scale(ctx, w, n); err != nil {
			return fmt.Errorf("scale revision %d to %d: %w", rev, n, err)
		}
		a.scaled[rev] = n
	}
	c.route(a, name, c.table(ctx, a, s, plan, replicas))
	c.preview(a, plan, replicas)
	return nil
}

// table is the routing of an app's main address in state s: the plan's
// routes over the ready replicas, the session affinity of the rollout's
// target, and while a canary rollout runs, its match rules.
func (c *Controller) table(ctx context.Context, a *appState, s strategy.State, plan strategy.Plan, replicas []Replica) Table {
	t := Table{Routes: routes(plan, replicas)}
	m, err := c.manifest(ctx, a, s.To)
	if err != nil {
		return t
	}
	t.Affinity = m.SessionAffinity
	// The router's limits are the target's, as the rollout runs and once
	// promoted; after a rollback or abort, the stable's again.
	t.Router = m.Router
	if s.Phase == strategy.RolledBack || s.Phase == strategy.Aborted {
		if sm, err := c.manifest(ctx, a, a.app.Stable); err == nil {
			t.Router = sm.Router
		}
	}
	if cn := m.Strategy.Canary; cn != nil && s.Kind == strategy.Canary && !s.Phase.Final() {
		for _, r := range cn.Match {
			switch {
			case r.Header != nil:
				t.Match = append(t.Match, Match{Header: r.Header.Name, Value: r.Header.Value, Revision: s.To})
			case r.Cookie != nil:
				t.Match = append(t.Match, Match{Cookie: r.Cookie.Name, Value: r.Cookie.Value, Revision: s.To})
			}
		}
	}
	return t
}

// routes turns a plan into routes over the ready replicas.
func routes(plan strategy.Plan, replicas []Replica) []Route {
	backends := map[int][]string{}
	for _, r := range replicas {
		if r.Ready && !r.Stopping && plan.Replicas[r.Revision] > 0 {
			backends[r.Revision] = append(backends[r.Revision], r.Addr)
		}
	}
	var out []Route
	for _, rev := range slices.Sorted(maps.Keys(plan.Replicas)) {
		w := plan.Weights[rev]
		if plan.ByReady {
			w = len(backends[rev])
		}
		if w > 0 || len(backends[rev]) > 0 {
			out = append(out, Route{Revision: rev, Weight: w, Backends: backends[rev], Holdback: rev == plan.Holdback})
		}
	}
	return out
}

func (c *Controller) route(a *appState, key string, t Table) {
	if last, ok := a.routes[key]; ok && last.equal(t) {
		return
	}
	a.routes[key] = t
	c.cfg.Traffic.Route(key, t)
}

func routeEqual(x, y Route) bool {
	return x.Revision == y.Revision && x.Weight == y.Weight && x.Holdback == y.Holdback && slices.Equal(x.Backends, y.Backends)
}

// preview serves a blue-green rollout's new revision on its preview
// address while the rollout runs, and closes it after.
func (c *Controller) preview(a *appState, plan strategy.Plan, replicas []Replica) {
	key := PreviewKey(a.app.Name)
	if plan.Preview == 0 {
		if a.preview != "" {
			c.cfg.Traffic.Close(key)
			a.preview = ""
			delete(a.routes, key)
		}
		return
	}
	m := a.revisions[plan.Preview]
	if m == nil || m.manifest.Strategy.BlueGreen == nil || m.manifest.Strategy.BlueGreen.Preview == "" {
		return
	}
	addr := m.manifest.Strategy.BlueGreen.Preview
	if a.preview != addr {
		if err := c.cfg.Traffic.Listen(key, addr); err != nil {
			if a.previewFailed != addr {
				a.previewFailed = addr
				c.recordNow(context.Background(), a.app.Name, "rollout.preview-failed",
					fmt.Sprintf("cannot serve the preview of revision %d on %s: %s", plan.Preview, addr, listenError(err)))
			}
			return
		}
		a.preview, a.previewFailed = addr, ""
	}
	only := strategy.Plan{Replicas: map[int]int{plan.Preview: 1}, Weights: map[int]int{plan.Preview: 100}}
	c.route(a, key, Table{Routes: routes(only, replicas), Router: m.manifest.Router})
}

// Drain takes a stopping replica out of an app's routes at once and waits,
// up to the drain timeout, for the requests in flight to it. Engines call
// it before they stop a replica on purpose.
func (c *Controller) Drain(ctx context.Context, app, addr string) {
	c.mu.Lock()
	if a := c.apps[app]; a != nil && a.rollout.ID != 0 && a.frozen == nil {
		s := c.routedState(a)
		plan := strategy.Desired(s)
		replicas := c.cfg.Engine.Replicas(app)
		c.route(a, app, c.table(ctx, a, s, plan, replicas))
		c.preview(a, plan, replicas)
	} else if a != nil && a.frozen != nil {
		c.route(a, app, c.frozenTable(ctx, a, c.cfg.Engine.Replicas(app)))
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DrainTimeout)
	defer cancel()
	for _, key := range []string{app, PreviewKey(app)} {
		if err := c.cfg.Traffic.WaitIdle(ctx, key, addr); err != nil {
			c.cfg.Log.Warn("drain", "app", app, "replica", addr, "err", err)
		}
	}
}
