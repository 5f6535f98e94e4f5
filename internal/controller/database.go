package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// Database is what the controller needs of apps' databases
// (internal/database): lint a release's migrations on a scratch copy, run
// them, revert them, and name the database for people.
type Database interface {
	Lint(ctx context.Context, cfg *manifest.Database, set migrate.Set) (migrate.Lint, error)
	Migrate(ctx context.Context, cfg *manifest.Database, set migrate.Set, from, to uint64) (migrate.Run, error)
	Revert(ctx context.Context, cfg *manifest.Database, migrations []migrate.Migration, from, to uint64) (migrate.Run, error)
	Version(ctx context.Context, cfg *manifest.Database) (uint64, error)
	// Recover settles, after lastgood stopped while migrations ran from
	// version from to version to, what a statement that runs by itself
	// left, and says the version then.
	Recover(ctx context.Context, cfg *manifest.Database, migrations []migrate.Migration, from, to uint64) (migrate.Recovery, error)
	Where(cfg *manifest.Database) string
}

// TriggerMigration rolls a rollout back whose migrations failed: no
// traffic ever moved.
const TriggerMigration = "migration"

// TriggerSchema rolls a rollout back whose migrations broke the stable
// revision: it degraded on the new schema, and the rollback policy gives
// it its schema back.
const TriggerSchema = "schema"

// schemaBlame names, once the stable revision is found degraded in a
// rollout that ran migrations, the migration to blame: the first that is
// not compatible, else the last. "" when the rollout ran none. It also
// says whether the rollback policy would revert it. c.mu is held.
func (c *Controller) schemaBlame(a *appState) (why string, reverts bool) {
	ap := a.applied
	if ap == nil || ap.rollout != a.rollout.ID || len(ap.list) == 0 {
		return "", false
	}
	m := ap.list[len(ap.list)-1].Migration
	for _, x := range ap.list {
		if x.Class != migrate.Compatible {
			m = x.Migration
			break
		}
	}
	d := migrate.OnRollback(ap.from, ap.list, a.state.From)
	return fmt.Sprintf("revision %d degraded after migration %s: the schema change is not backward-compatible", a.state.From, m.Digits), len(d.Revert) > 0
}

// degradedSchema decides a rollout whose stable revision, and not the new
// one, degraded after its migrations ran (obs.Health says so): the verdict
// names the migration. While the rollout runs and the policy can revert the
// migration, it is rolled back, so that the stable gets its schema back;
// otherwise strategy.Next decides as for any unhealthy target (a canary
// is held) with the words added. ok is false when nothing ran. c.mu is
// held.
func (c *Controller) degradedSchema(a *appState, spec strategy.Spec, obs *strategy.Observation) (strategy.State, []strategy.Event, bool) {
	if obs.Health.From == "" || obs.Health.To != "" {
		// Both degraded together: the environment, not the schema
		// (strategy.Both), as the new revision is written for it.
		return strategy.State{}, nil, false
	}
	why, reverts := c.schemaBlame(a)
	if why == "" {
		return strategy.State{}, nil, false
	}
	rate := obs.Health.From
	obs.Health.From = rate + "; " + why
	s := a.state
	if !reverts || s.Phase.Final() || s.HoldOverridden {
		return strategy.State{}, nil, false
	}
	trouble := fmt.Sprintf("revision %d's %s", s.From, rate)
	next, evs := strategy.RollBack(spec, s, obs.Now, TriggerSchema, why+": "+trouble)
	next.TargetTrouble = trouble
	found := strategy.Event{Type: "rollout.target-unhealthy",
		Message: fmt.Sprintf("%s: %s; rolled back so that the rollback policy reverts it", why, trouble),
		Data:    strategy.TargetReport{Revision: s.From, Trouble: trouble, When: "rollout"}}
	return next, append([]strategy.Event{found}, evs...), true // the finding, then the decision
}

// dbPlan is what the apply-time lint decided of a revision's migrations.
type dbPlan struct {
	cfg      *manifest.Database
	set      migrate.Set
	lint     migrate.Lint
	allow    map[uint64]string
	warnings []string
	applied  []migrate.Applied
	// linted is set when lint ran (not when the content already serves).
	linted bool
	// rollout is the rollout that runs the migrations, once started.
	rollout int64
}

func (p *dbPlan) pending() bool { return p != nil && p.lint.To > p.lint.From }

// applied is what an app's latest rollout ran, for the rollback policy.
type appliedMigrations struct {
	rollout int64
	cfg     *manifest.Database
	from    uint64
	to      uint64
	list    []migrate.Applied
	decided bool // the rollback policy has been applied
}

// migratingData is the data of a database.migrating event: enough to
// apply the rollback policy after a restart.
type migratingData struct {
	Database string             `json:"database"`
	From     uint64             `json:"from"`
	To       uint64             `json:"to"`
	Applied  []migrate.Applied  `json:"applied"`
	Findings []migrate.Finding  `json:"findings"`
	Alone    []migrate.Finding  `json:"alone,omitempty"`
	Warnings []string           `json:"warnings,omitempty"`
	Config   *manifest.Database `json:"config"`
}

// fielded is an error about one manifest field (internal/database's).
type fielded interface {
	error
	Field() string
}

// lintDatabase checks a manifest's database section and lints the
// migrations its revision would run. It reads the store and the database
// but holds no lock: it may wait on the network. Nothing is linted when
// the content is what serves or rolls out already.
func (c *Controller) lintDatabase(ctx context.Context, req ApplyRequest, m *manifest.App, digest string) (*dbPlan, error) {
	if m.Database == nil {
		return nil, nil
	}
	data := []byte(req.Manifest)
	fail := func(field, format string, args ...any) error {
		return manifest.Errors{manifest.At(req.File, data, field, fmt.Sprintf(format, args...))}
	}
	if c.cfg.Database == nil {
		return nil, fail("database", "this lastgood server runs no database migrations")
	}
	files := map[string]string{}
	var errs manifest.Errors
	for key, d := range req.Artifacts {
		if !migrate.InDir(m.Database.Migrations, key) {
			continue
		}
		if !c.cfg.HasArtifact(d) {
			errs = append(errs, manifest.At(req.File, data, "database.migrations", fmt.Sprintf("%s: the server has no artifact %s", key, d)))
		}
		files[key] = d
	}
	set, problems := migrate.Layout(m.Database.Migrations, files)
	for _, p := range problems {
		errs = append(errs, manifest.At(req.File, data, "database.migrations", p.Error()))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	plan := &dbPlan{cfg: m.Database, set: set, allow: map[uint64]string{}}
	for _, a := range m.Database.Allow {
		if v, ok := a.Version(); ok {
			plan.allow[v] = a.Reason
		}
	}
	app, err := c.cfg.Store.App(ctx, m.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	case c.serves(ctx, app, digest):
		return plan, nil // nothing to do, or already rolling out: the apply says which
	}
	lint, err := c.cfg.Database.Lint(ctx, m.Database, set)
	if fe, ok := errors.AsType[fielded](err); ok {
		return nil, manifest.Errors{manifest.At(req.File, data, fe.Field(), fe.Error())}
	}
	if err != nil {
		return nil, fmt.Errorf("lint the migrations of %s: %w", m.Name, err)
	}
	plan.lint, plan.linted = lint, true
	history, err := c.migrationHistory(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	refusals, warnings := migrate.Check(set, lint, migrate.Context{Stable: app.Stable, Allow: plan.allow, History: history, Now: c.cfg.Now()})
	for _, r := range refusals {
		field := r.Field
		if field == "database.allow" {
			for i, a := range m.Database.Allow {
				if v, _ := a.Version(); set.Get(v) == nil {
					field = fmt.Sprintf("database.allow[%d].migration", i)
				}
			}
		}
		errs = append(errs, manifest.At(req.File, data, field, r.Error()))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	plan.warnings = append(lint.Warnings, warnings...)
	for _, mg := range set.Between(lint.From, lint.To) {
		a := migrate.Applied{Migration: mg, Class: lint.Class(mg.Version), Change: changeOf(lint, mg.Version)}
		switch {
		case mg.Down == nil:
		case lint.DownErrors[mg.Version] != "":
			a.Down = migrate.Destructive // it cannot be trusted to run
		default:
			a.Down = lint.Downs[mg.Version]
		}
		plan.applied = append(plan.applied, a)
	}
	return plan, nil
}

func changeOf(lint migrate.Lint, v uint64) string {
	var out []string
	for _, f := range lint.Findings {
		if f.Version == v && f.Class != migrate.Compatible {
			out = append(out, f.Change)
		}
	}
	if len(out) == 0 {
		for _, f := range lint.Findings {
			if f.Version == v {
				out = append(out, f.Change)
			}
		}
	}
	return strings.Join(out, "; ")
}

// serves reports whether content with digest is the app's stable revision,
// or the one its unfinished rollout rolls out.
func (c *Controller) serves(ctx context.Context, app store.App, digest string) bool {
	for _, n := range []int{app.Stable, app.Latest} {
		if n == 0 {
			continue
		}
		rev, err := c.cfg.Store.Revision(ctx, app.Name, n)
		if err != nil || rev.Digest != digest {
			continue
		}
		if n == app.Stable {
			return true
		}
		if r, err := c.cfg.Store.ActiveRollout(ctx, app.Name); err == nil && r.To == n {
			return true
		}
	}
	return false
}

// migrationHistory tells, for each migration version an earlier rollout
// of the app ran, whether a release on that schema has since been promoted
// and outlived its rollback window (expand/contract waits for that).
func (c *Controller) migrationHistory(ctx context.Context, app string) (map[uint64]migrate.Release, error) {
	evs, err := c.cfg.Store.Events(ctx, store.EventQuery{App: app})
	if err != nil {
		return nil, err
	}
	ranBy := map[uint64]int64{} // version → the rollout that ran it last
	for _, ev := range evs {
		var run struct{ Before, After uint64 }
		switch ev.Type {
		case "database.migrated", "database.reverted":
			if err := json.Unmarshal(ev.Data, &run); err != nil {
				continue
			}
		default:
			continue
		}
		for v := run.Before + 1; v <= run.After; v++ {
			ranBy[v] = ev.Rollout
		}
		for v := run.After + 1; v <= run.Before; v++ {
			delete(ranBy, v)
		}
	}
	if len(ranBy) == 0 {
		return nil, nil
	}
	rollouts, err := c.cfg.Store.Rollouts(ctx, app, 0)
	if err != nil {
		return nil, err
	}
	slices.Reverse(rollouts) // oldest first
	now := c.cfg.Now()
	out := map[uint64]migrate.Release{}
	for v, id := range ranBy {
		rel := migrate.Release{}
		for _, r := range rollouts {
			if r.ID < id {
				continue
			}
			if r.ID == id {
				rel.Revision = r.To
				rel.RolledBack = r.Phase == store.PhaseRolledBack || r.Phase == store.PhaseAborted
			}
			if r.Phase != store.PhasePromoted {
				continue
			}
			// a later release promoted on this schema settles it too
			var st strategy.State
			json.Unmarshal(r.State, &st)
			rel.RolledBack, rel.Revision = false, r.To
			if st.From == 0 || !now.Before(st.WarmUntil) {
				rel.Settled, rel.WindowEnds = true, time.Time{}
				break
			}
			rel.WindowEnds = st.WarmUntil
		}
		out[v] = rel
	}
	return out, nil
}

// migrationEvents are the events stored with a rollout that migrates
// first: what will run, and each acknowledgment with its reason (the
// audit of database.allow).
func migrationEvents(p *dbPlan, where string) []strategy.Event {
	var names []string
	for _, a := range p.applied {
		names = append(names, a.Migration.String())
	}
	msg := fmt.Sprintf("migrating %s: %s, schema version %d → %d, before any traffic moves", where, strings.Join(names, ", "), p.lint.From, p.lint.To)
	if len(p.lint.Alone) > 0 {
		var alone []string
		for _, f := range p.lint.Alone {
			alone = append(alone, fmt.Sprintf("%s:%d", f.File, f.Line))
		}
		msg += fmt.Sprintf("; in one transaction, except %s, which cannot run in one and runs by itself", strings.Join(alone, ", "))
	} else {
		msg += "; in one transaction"
	}
	evs := []strategy.Event{{Type: "database.migrating", Message: msg, Data: migratingData{
		Database: where, From: p.lint.From, To: p.lint.To, Applied: p.applied, Findings: p.lint.Findings,
		Alone: p.lint.Alone, Warnings: p.warnings, Config: redactedConfig(p.cfg)}}}
	for _, v := range slices.Sorted(maps.Keys(p.allow)) {
		m := p.set.Get(v)
		if m == nil || v <= p.lint.From || v > p.lint.To || p.lint.Class(v) == migrate.Compatible {
			continue
		}
		evs = append(evs, strategy.Event{Type: "database.acknowledged",
			Message: fmt.Sprintf("migration %s is %s and acknowledged in database.allow: %s", m, p.lint.Class(v), p.allow[v]),
			Data:    map[string]any{"version": v, "class": p.lint.Class(v), "reason": p.allow[v], "change": changeOf(p.lint, v)}})
	}
	for _, w := range p.warnings {
		evs = append(evs, strategy.Event{Type: "database.warning", Message: w})
	}
	return evs
}

// unchangedData is the data of a database.unchanged event.
type unchangedData struct {
	Database string `json:"database"`
	// Version is the schema version the revision is released on;
	// Migrations the one its migrations bring a database to.
	Version    uint64 `json:"version"`
	Migrations uint64 `json:"migrations"`
}

// unchangedEvents record the schema version a revision with a database
// section is released on when it has nothing to migrate (the database is
// at its version already, or ahead of it), with lint's warnings. None
// when lint did not run (p nil, or lint skipped).
func unchangedEvents(p *dbPlan, db Database, revision int) []strategy.Event {
	if p == nil || !p.linted || db == nil {
		return nil
	}
	where := db.Where(p.cfg)
	msg := fmt.Sprintf("%s is at schema version %d, which revision %d's migrations bring it to: nothing to migrate", where, p.lint.To, revision)
	if p.lint.From > p.set.Version() {
		msg = fmt.Sprintf("%s is at schema version %d, ahead of revision %d's migrations (%d): nothing to migrate; the revision runs on the newer schema", where, p.lint.From, revision, p.set.Version())
	}
	evs := []strategy.Event{{Type: "database.unchanged", Message: msg,
		Data: unchangedData{Database: where, Version: p.lint.To, Migrations: p.set.Version()}}}
	for _, w := range p.lint.Warnings {
		if !strings.Contains(w, "ahead of this revision") { // said above
			evs = append(evs, strategy.Event{Type: "database.warning", Message: w})
		}
	}
	return evs
}

// redactedConfig is a database section fit for the event log: a password
// written in its URL is redacted (the controller reads the URL from the
// revision's manifest when it needs it).
func redactedConfig(cfg *manifest.Database) *manifest.Database {
	out := *cfg
	out.URL = redact.Text(cfg.URL)
	return &out
}

// runMigrations runs the migrations of the rollout p started, holding no
// lock, then records the outcome: on success the rollout goes on; on a
// failure it is rolled back before any traffic moved.
func (c *Controller) runMigrations(ctx context.Context, res ApplyResult, p *dbPlan) (ApplyResult, error) {
	// Not the caller's context: a client that stops waiting (Ctrl-C on
	// apply) must not fail the release's migrations half way, nor keep
	// their outcome from being recorded.
	ctx = context.WithoutCancel(ctx)
	run, err := c.cfg.Database.Migrate(ctx, p.cfg, p.set, p.lint.From, p.lint.To)
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[res.App]
	if a == nil || a.rollout.ID != p.rollout {
		return res, fmt.Errorf("%s: rollout #%d ended while its migrations ran", res.App, p.rollout)
	}
	a.migrating = 0
	spec, serr := c.spec(ctx, a, a.state.To)
	if serr != nil {
		return res, serr
	}
	now := c.cfg.Now()
	if err != nil {
		reason := fmt.Sprintf("its migrations failed, so no traffic moved: %v", err)
		next, evs := strategy.RollBack(spec, a.state, now, TriggerMigration, reason)
		evs = append([]strategy.Event{{Type: "database.migration-failed",
			Message: fmt.Sprintf("migration failed on %s: %v", run.Database, err), Data: run}}, evs...)
		if perr := c.persist(ctx, a, next, evs); perr != nil {
			return res, perr
		}
		res.Message += fmt.Sprintf("; migration failed: %v; rollout #%d rolled back", err, p.rollout)
		return res, c.reconcile(ctx, res.App)
	}
	msg := fmt.Sprintf("migrated %s: schema version %d → %d", run.Database, run.Before, run.After)
	if err := c.persist(ctx, a, a.state, []strategy.Event{{Type: "database.migrated", Message: msg, Data: run}}); err != nil {
		return res, err
	}
	a.applied = &appliedMigrations{rollout: p.rollout, cfg: p.cfg, from: run.Before, to: run.After, list: p.applied}
	res.Message += "; " + msg
	if err := c.reconcile(ctx, res.App); err != nil {
		return res, err
	}
	c.Wake()
	return res, nil
}

// settleSchema applies the rollback policy once the rollout that ran
// migrations has been rolled back or aborted and traffic is back on the
// stable revision (execute has run): compatible migrations stay;
// acknowledged incompatible ones are reverted with their down files when
// that is safe, in the background; otherwise the schema is frozen and the
// event (and so the incident) says what must be done by hand. c.mu is
// held.
func (c *Controller) settleSchema(ctx context.Context, a *appState) {
	ap := a.applied
	if ap == nil || ap.decided || ap.rollout != a.rollout.ID {
		return
	}
	if a.state.Phase != strategy.RolledBack && a.state.Phase != strategy.Aborted {
		return
	}
	ap.decided = true
	d := migrate.OnRollback(ap.from, ap.list, a.state.From)
	ev := store.Event{App: a.app.Name, Rollout: a.rollout.ID, Revision: a.state.To}
	if len(d.Revert) == 0 {
		ev.Type, ev.Message = "database.kept", d.Message
		if d.Frozen {
			ev.Type = "database.frozen"
			ev.Message += "; by hand: " + strings.Join(d.Manual, "; ")
		}
		c.recordEvent(ctx, ev, d)
		return
	}
	ev.Type, ev.Message = "database.reverting", d.Message
	c.recordEvent(ctx, ev, d)
	runCtx := c.runCtx
	if runCtx == nil {
		runCtx = context.WithoutCancel(ctx)
	}
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		run, err := c.cfg.Database.Revert(runCtx, ap.cfg, d.Revert, ap.to, d.To)
		if err != nil {
			ev.Type = "database.revert-failed"
			ev.Message = fmt.Sprintf("the revert failed, so the schema is frozen at version %d: %v", run.After, err)
		} else {
			ev.Type = "database.reverted"
			ev.Message = fmt.Sprintf("reverted %s: schema version %d → %d", run.Database, run.Before, run.After)
		}
		c.recordEvent(runCtx, ev, run)
	}()
}

// recordEvent appends one event with data, outside a rollout transition.
func (c *Controller) recordEvent(ctx context.Context, ev store.Event, data any) {
	ev.Time = c.cfg.Now()
	raw, err := json.Marshal(data)
	if err == nil {
		ev.Data = raw
	}
	err = c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(ev)
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.cfg.Log.Error("record event", "app", ev.App, "type", ev.Type, "err", err)
	}
}

// recoverSchema rebuilds, after a restart, what the app's latest rollout
// did to its database, from the event log: the migrations it ran, for the
// rollback policy, unless that has been applied already. A rollout whose
// migrations were running when lastgood stopped (kill -9) is settled by
// the database's own version once Recover has settled a statement that
// runs by itself (internal/database) — the migrations run in
// transactions, so it is the old version, the new one, or, when a
// statement runs by itself, one between: at the new, they are recorded as
// run; between, the part that committed is recorded and the rollout
// rolled back; at the old (or when the database cannot tell), it is
// rolled back before any traffic moved. Every time an event says which. (A restart rolls an
// unfinished rollout back anyway, strategy.Recover; at the new version the
// rollback policy then decides what becomes of the migrations.) c.mu is
// held.
func (c *Controller) recoverSchema(ctx context.Context, a *appState, now time.Time) error {
	evs, err := c.cfg.Store.Events(ctx, store.EventQuery{Rollout: a.rollout.ID})
	if err != nil {
		return err
	}
	var plan *migratingData
	var ran *migrate.Run
	decided, failed := false, false
	for _, ev := range evs {
		switch ev.Type {
		case "database.migrating":
			plan = &migratingData{}
			if err := json.Unmarshal(ev.Data, plan); err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
		case "database.migrated":
			ran = &migrate.Run{}
			if err := json.Unmarshal(ev.Data, ran); err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
		case "database.migration-failed":
			failed = true
		case "database.kept", "database.frozen", "database.reverted", "database.revert-failed":
			decided = true
		case "database.reverting":
			decided = false // a revert lastgood did not see end: decided again, run again
		}
	}
	if plan == nil || failed || decided {
		return nil
	}
	m, err := c.manifest(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	if m.Database == nil {
		return nil
	}
	if ran != nil {
		a.applied = &appliedMigrations{rollout: a.rollout.ID, cfg: m.Database, from: ran.Before, to: ran.After, list: plan.Applied}
		return nil
	}
	if c.cfg.Database == nil || a.state.Phase.Final() {
		return nil
	}
	// The migrations were running when lastgood stopped. Recover settles
	// a statement that ran by itself, outside the transactions
	// (internal/database): what it left, and the version after it.
	var migrations []migrate.Migration
	for _, x := range plan.Applied {
		migrations = append(migrations, x.Migration)
	}
	rec, verr := c.cfg.Database.Recover(ctx, m.Database, migrations, plan.From, plan.To)
	v := rec.Version
	where := c.cfg.Database.Where(m.Database)
	notes := ""
	if len(rec.Notes) > 0 {
		notes = "; " + strings.Join(rec.Notes, "; ")
	}
	spec, err := c.spec(ctx, a, a.state.To)
	if err != nil {
		return err
	}
	if verr == nil && v == plan.To {
		msg := fmt.Sprintf("lastgood stopped while the migrations ran, and they had committed: %s is at schema version %d (it was %d)%s; they are the rollout's, for the rollback policy", where, v, plan.From, notes)
		run := migrate.Run{Direction: "up", Database: where, Before: plan.From, After: v}
		a.applied = &appliedMigrations{rollout: a.rollout.ID, cfg: m.Database, from: plan.From, to: v, list: plan.Applied}
		return c.persist(ctx, a, a.state, []strategy.Event{{Type: "database.migrated", Message: msg, Data: run}})
	}
	if verr == nil && v > plan.From && v < plan.To {
		// Part of them committed: a statement that runs by itself, or
		// the transaction before it. The part is the rollout's, for
		// the rollback policy; the rest never ran, so the rollout
		// cannot go on.
		msg := fmt.Sprintf("lastgood stopped while the migrations ran, and those up to schema version %d had committed: %s is at schema version %d (it was %d; the release brings %d)%s; "+
			"they are the rollout's, for the rollback policy, and the rest did not run", v, where, v, plan.From, plan.To, notes)
		var part []migrate.Applied
		for _, x := range plan.Applied {
			if x.Migration.Version <= v {
				part = append(part, x)
			}
		}
		a.applied = &appliedMigrations{rollout: a.rollout.ID, cfg: m.Database, from: plan.From, to: v, list: part}
		next, tevs := strategy.RollBack(spec, a.state, now, TriggerMigration, msg+"; no traffic moved")
		run := migrate.Run{Direction: "up", Database: where, Before: plan.From, After: v, Error: msg}
		return c.persist(ctx, a, next, append([]strategy.Event{{Type: "database.migrated", Message: msg, Data: run}}, tevs...))
	}
	var why string
	switch {
	case verr != nil:
		why = fmt.Sprintf("lastgood stopped while the migrations ran, and the schema version of %s cannot be read now (%v)", where, verr)
	case v == plan.From:
		why = fmt.Sprintf("lastgood stopped while the migrations ran, and they had not committed: %s is at schema version %d, as before%s", where, v, notes)
	default:
		why = fmt.Sprintf("lastgood stopped while the migrations ran, and %s is at schema version %d, neither %d nor %d nor in between: "+
			"something else changed it; the schema stays there", where, v, plan.From, plan.To)
	}
	next, tevs := strategy.RollBack(spec, a.state, now, TriggerMigration, why+"; no traffic moved")
	run := migrate.Run{Direction: "up", Database: where, Before: plan.From, After: v, Error: why}
	if verr != nil {
		run.After = plan.From
	}
	tevs = append([]strategy.Event{{Type: "database.migration-failed", Message: why, Data: run}}, tevs...)
	return c.persist(ctx, a, next, tevs)
}
