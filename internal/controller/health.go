package controller

import (
	"context"
	"fmt"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/strategy"
)

// healthBase is what the router had counted of each revision when a
// rollout started: the stable's is its history, and each revision's
// counts since are what the rollout changed.
type healthBase struct {
	rollout int64
	counts  map[int]judge.Sample
}

// samples returns the router's cumulative counts of an app, none when the
// controller has no router.
func (c *Controller) samples(app string) map[int]judge.Sample {
	if c.cfg.Samples == nil {
		return nil
	}
	return c.cfg.Samples(app)
}

// baseHealth takes the counts at the start of a's latest rollout.
func (c *Controller) baseHealth(a *appState) {
	a.health = healthBase{rollout: a.rollout.ID, counts: c.samples(a.app.Name)}
}

// health tests both revisions' error rates since the rollout began
// against the stable's history (analysis.Degraded). c.mu is held.
func (c *Controller) health(ctx context.Context, a *appState, spec strategy.Spec, all map[int]judge.Sample) strategy.Health {
	s := a.state
	if s.From == 0 || all == nil || !strategy.WatchesTarget(spec, s, c.cfg.Now()) {
		return strategy.Health{}
	}
	if a.health.rollout != a.rollout.ID {
		c.baseHealth(a) // recovered: the history starts now
	}
	var margin, alpha float64
	if m, err := c.manifest(ctx, a, s.To); err == nil {
		margin, alpha = analysis.HealthLevel(m.Analysis)
	} else {
		margin, alpha = analysis.HealthLevel(nil)
	}
	history := a.health.counts[s.From]
	var h strategy.Health
	if r, ok := analysis.Degraded(history, since(all[s.From], history), margin, alpha, "its"); ok {
		h.From = r
	}
	if r, ok := analysis.Degraded(history, since(all[s.To], a.health.counts[s.To]), margin, alpha, fmt.Sprintf("revision %d's", s.From)); ok {
		h.To = r
	}
	return h
}

// since returns the requests and errors counted after base; all of cur
// when the counts went backwards (the router was recreated).
func since(cur, base judge.Sample) judge.Sample {
	if cur.Requests < base.Requests || cur.Errors < base.Errors {
		return judge.Sample{Requests: cur.Requests, Errors: cur.Errors}
	}
	return judge.Sample{Requests: cur.Requests - base.Requests, Errors: cur.Errors - base.Errors}
}
