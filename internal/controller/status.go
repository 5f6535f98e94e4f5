package controller

import (
	"context"
	"slices"
	"sort"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// AppStatus is an app as the controller sees it now.
type AppStatus struct {
	store.App
	Rollout  *RolloutStatus `json:"rollout,omitempty"`
	Replicas []Replica      `json:"replicas"`
	Traffic  []Route        `json:"traffic"`
	Preview  string         `json:"preview,omitempty"`
	// Unrecorded is a rollback or abort already applied to traffic that
	// the store could not record yet (a full disk).
	Unrecorded *Unrecorded `json:"unrecorded,omitempty"`
	// ReadOnly, in read-only serving (a damaged store), says what of the
	// app is served and why.
	ReadOnly string `json:"readOnly,omitempty"`
}

// RolloutStatus is the latest rollout with its decoded state.
type RolloutStatus struct {
	store.Rollout
	Detail strategy.State `json:"detail"`
	Steps  int            `json:"steps,omitempty"` // canary steps
	// Checks are the latest verdicts of the rollout's analysis while it
	// runs (during the rollout and its rollback window).
	Checks []analysis.Result `json:"checks,omitempty"`
	// DefaultChecks names the checks when they are lastgood's defaults
	// (the manifest of the revision rolling out has no analysis section).
	DefaultChecks []string `json:"defaultChecks,omitempty"`
	// NoChecks says that no analysis check judges this canary or
	// blue-green rollout: only the replicas' health (HealthRules) can roll
	// it back.
	NoChecks bool `json:"noChecks,omitempty"`
	// Incident is the id of the rollout's incident once it ended in a
	// rollback or abort, or was an undo (written a moment after).
	Incident string `json:"incident,omitempty"`
}

// ShownRollout is a rollout as lastgood shows it: its reason and state
// redacted (a reason can quote a replica's log line).
func ShownRollout(r store.Rollout) store.Rollout {
	r.Reason = redact.Text(r.Reason)
	r.State = redact.JSON(r.State)
	return r
}

// Status reports one app as lastgood shows it: reasons, checks and exits
// redacted (docs/redaction.md).
func (c *Controller) Status(ctx context.Context, name string) (AppStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[name]
	if a == nil {
		return AppStatus{}, c.missing(ctx, name)
	}
	st := AppStatus{App: a.app, Replicas: c.cfg.Engine.Replicas(name), Traffic: a.routes[name].Routes, Preview: a.preview}
	if a.unrecorded != nil {
		st.Unrecorded = a.unrecorded.status()
	}
	if a.frozen != nil {
		st.ReadOnly = a.frozen.describe()
	}
	if st.Replicas == nil {
		st.Replicas = []Replica{}
	}
	for i := range st.Replicas {
		st.Replicas[i].LastExit = redact.Text(st.Replicas[i].LastExit)
	}
	if a.rollout.ID != 0 {
		detail := a.state
		detail.Reason = redact.Text(detail.Reason)
		rs := &RolloutStatus{Rollout: ShownRollout(a.rollout), Detail: detail, Checks: c.checks(a), Incident: incidentOf(a.rollout)}
		for i, r := range rs.Checks {
			r.Reason = redact.Text(r.Reason)
			r.Evidence.Warnings = slices.Clone(r.Evidence.Warnings)
			for j, w := range r.Evidence.Warnings {
				r.Evidence.Warnings[j] = redact.Text(w)
			}
			rs.Checks[i] = r
		}
		if m, err := c.manifest(ctx, a, a.state.To); err == nil {
			if m.Strategy.Canary != nil && a.state.Kind == strategy.Canary {
				rs.Steps = len(m.Strategy.Canary.Steps)
			}
			rs.DefaultChecks = defaultChecks(m)
			rs.NoChecks = noChecks(m) && (a.state.Kind == strategy.Canary || a.state.Kind == strategy.BlueGreen)
		}
		st.Rollout = rs
	}
	return st, nil
}

// Apps reports every app, by name.
func (c *Controller) Apps(ctx context.Context) []AppStatus {
	c.mu.Lock()
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := make([]AppStatus, 0, len(names))
	for _, n := range names {
		if st, err := c.Status(ctx, n); err == nil {
			out = append(out, st)
		}
	}
	return out
}
