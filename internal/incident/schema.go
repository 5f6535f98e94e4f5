package incident

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lastgood/lastgood/internal/migrate"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
)

// Schema is what the rollout did to the app's database: the schema
// version before its migrations and now, each run of migrations (up for
// the release, down for a revert) with every statement and its outcome,
// the acknowledgments of database.allow, and what the rollback policy
// decided (docs/database.md).
type Schema struct {
	Database string `json:"database"`
	// Before is the schema version before the release's migrations; After
	// the version as of the bundle (after the rollback policy, once it has
	// decided).
	Before uint64 `json:"before"`
	After  uint64 `json:"after"`
	// Migrations are the release's migrations with their classes.
	Migrations []migrate.Applied `json:"migrations"`
	Runs       []migrate.Run     `json:"runs"`
	// Acknowledged are the acknowledgments in database.allow, with their
	// reasons.
	Acknowledged []string `json:"acknowledged,omitempty"`
	// Policy is what the rollback policy decided ("" until it has);
	// Frozen is set when the schema stays on a version the stable revision
	// was not written for, and Manual says what must be done by hand.
	Policy string   `json:"policy,omitempty"`
	Frozen bool     `json:"frozen,omitempty"`
	Manual []string `json:"manual,omitempty"`
}

// Event types of the controller's database work (internal/controller).
const (
	typeMigrating = "database.migrating"
	typeDecided   = "database.kept"
	typeFrozen    = "database.frozen"
	typeReverting = "database.reverting"
	typeReverted  = "database.reverted"
	typeRevertErr = "database.revert-failed"
)

// schemaEvent reports whether an event ends the rollback policy's work,
// after which a written bundle is brought up to date.
func schemaEvent(t string) bool {
	return t == typeDecided || t == typeFrozen || t == typeReverted || t == typeRevertErr
}

// schemaOf reads the rollout's database events; nil when it ran no
// migrations.
func schemaOf(evs []store.Event) *Schema {
	var s *Schema
	for _, e := range evs {
		switch {
		case e.Type == typeMigrating:
			var d struct {
				Database string            `json:"database"`
				From     uint64            `json:"from"`
				Applied  []migrate.Applied `json:"applied"`
			}
			json.Unmarshal(e.Data, &d)
			s = &Schema{Database: d.Database, Before: d.From, After: d.From, Migrations: d.Applied, Runs: []migrate.Run{}}
		case s == nil:
		case e.Type == "database.acknowledged":
			s.Acknowledged = append(s.Acknowledged, redact.Text(e.Message))
		case e.Type == "database.migrated", e.Type == "database.migration-failed", e.Type == typeReverted, e.Type == typeRevertErr:
			var run migrate.Run
			if json.Unmarshal(e.Data, &run) == nil && run.Direction != "" {
				run.Error = redact.Text(run.Error)
				for i := range run.Migrations {
					for j := range run.Migrations[i].Statements {
						st := &run.Migrations[i].Statements[j]
						st.SQL, st.Error = redact.Text(st.SQL), redact.Text(st.Error)
					}
				}
				s.Runs = append(s.Runs, run)
				s.After = run.After
			}
			if e.Type == "database.migration-failed" && s.After == s.Before {
				s.Policy = "none needed: the migrations failed and nothing of them committed; the schema is as it was"
			}
			if e.Type == typeRevertErr {
				s.Frozen = true
				s.Policy += "; " + redact.Text(e.Message)
			}
		case e.Type == typeDecided, e.Type == typeFrozen, e.Type == typeReverting:
			var d migrate.Decision
			json.Unmarshal(e.Data, &d)
			s.Policy, s.Frozen, s.Manual = redact.Text(e.Message), d.Frozen, d.Manual
		}
	}
	return s
}

// schema brings inc.Database up to date with the rollout's events.
func (r *Recorder) schema(ctx context.Context, inc *Incident) {
	evs, err := r.cfg.Store.Events(ctx, store.EventQuery{Rollout: inc.Rollout})
	if err != nil {
		inc.Warnings = append(inc.Warnings, fmt.Sprintf("database events: %v", err))
		return
	}
	inc.Database = schemaOf(evs)
}

// schemaDecided writes a bundle again once the rollback policy has
// decided what becomes of its rollout's migrations (the bundle is written
// at the rollback, before traffic is back and the policy runs).
func (r *Recorder) schemaDecided(ctx context.Context, e store.Event) {
	for _, p := range r.pending {
		if p.inc.Rollout == e.Rollout {
			r.schema(ctx, p.inc)
			if err := write(r.cfg.Dir, p.inc); err != nil {
				r.failed(ctx, p.end, err)
			}
			return
		}
	}
	inc, err := Load(r.cfg.Dir, r.idOf(ctx, e.App, e.Rollout))
	if err != nil {
		return // no bundle: the rollout was not rolled back
	}
	r.schema(ctx, inc)
	if err := write(r.cfg.Dir, inc); err != nil {
		r.failed(ctx, e, err)
	}
}
