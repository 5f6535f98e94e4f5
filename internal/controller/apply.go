package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// ApplyRequest is a manifest as the user wrote it, with the digests of the
// artifacts the client already uploaded.
type ApplyRequest struct {
	File      string            `json:"file"`
	Manifest  string            `json:"manifest"`
	Artifacts map[string]string `json:"artifacts"` // path as written → sha256:…
	// Actor is who applies (the API token's name), recorded on the
	// events the apply writes. The API sets it; clients cannot.
	Actor string `json:"-"`
}

// ApplyResult says what an apply (or undo) did.
type ApplyResult struct {
	App      string `json:"app"`
	Revision int    `json:"revision"`
	Created  bool   `json:"created"`           // a new revision was stored
	Rollout  int64  `json:"rollout,omitempty"` // the rollout started, 0 for none
	Message  string `json:"message"`
	// Flags are the flag revisions the apply stored, one per flag whose
	// declaration is new or changed.
	Flags []FlagResult `json:"flags,omitempty"`
}

// Digest is the content address of a revision: its canonical manifest and
// the digests of its artifacts.
func Digest(m *manifest.App, artifacts map[string]string) string {
	h := sha256.New()
	h.Write(m.Canonical())
	for _, k := range slices.Sorted(maps.Keys(artifacts)) {
		fmt.Fprintf(h, "\x00%s\x00%s", k, artifacts[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Apply stores a new revision of an app and starts its rollout. Applying
// content equal to the stable revision is a no-op ("nothing to do"), and
// so is content equal to the revision rolling out; content equal to the
// latest revision, rolled back, starts a new rollout of it without a new
// revision. A different manifest while a rollout is in progress is
// refused (ErrConflict): abort it or wait. Every refusal changes nothing.
// An app applied again after `lastgood delete` starts afresh (a first
// release) with a new revision numbered after the kept ones.
func (c *Controller) Apply(ctx context.Context, req ApplyRequest) (ApplyResult, error) {
	if err := c.writable(); err != nil {
		return ApplyResult{}, err
	}
	m, err := manifest.Parse(req.File, []byte(req.Manifest))
	if err != nil {
		return ApplyResult{}, err
	}
	ctx = withActor(ctx, req.Actor)
	// Flags have revisions of their own: a flag change is no release.
	declared := m.Flags
	m.Flags = nil
	pins, err := c.resolve(ctx, req, m) // may wait on the network: before the lock
	if err != nil {
		return ApplyResult{}, err
	}
	if err := c.migratingConflict(ctx, m.Name, Digest(m, withPins(req.Artifacts, pins))); err != nil {
		return ApplyResult{}, err // refused at once, without linting against a database that migrates
	}
	db, err := c.lintDatabase(ctx, req, m, Digest(m, withPins(req.Artifacts, pins))) // waits on the database: before the lock too
	if err != nil {
		return ApplyResult{}, err
	}
	res, err := c.apply(ctx, req, m, pins, db)
	if err != nil {
		return res, err
	}
	if res.Flags, err = c.applyFlags(ctx, m.Name, declared); err != nil {
		return res, fmt.Errorf("%s: revision %d is applied, but its flags are not: %w", m.Name, res.Revision, err)
	}
	if db == nil || db.rollout == 0 {
		return res, nil
	}
	return c.runMigrations(ctx, res, db)
}

// migratingConflict refuses a manifest other than the one rolling out
// while that rollout runs its migrations (ErrConflict).
func (c *Controller) migratingConflict(ctx context.Context, name, digest string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[name]
	if a == nil || a.rollout.ID == 0 || a.migrating != a.rollout.ID {
		return nil
	}
	if rev, err := c.revision(ctx, a, a.state.To); err == nil && rev.Digest == digest {
		return nil // the same content: apply says it is rolling out
	}
	return migratingError(name, a)
}

func migratingError(name string, a *appState) error {
	return fmt.Errorf("%w: %s: rollout #%d to revision %d is running its migrations, before any traffic moves (they cannot be stopped half way); apply again once they are done",
		ErrConflict, name, a.rollout.ID, a.state.To)
}

// withPins is a request's artifacts with the engine's pins.
func withPins(artifacts, pins map[string]string) map[string]string {
	if len(pins) == 0 {
		return artifacts
	}
	out := maps.Clone(artifacts)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, pins)
	return out
}

// apply is Apply under the lock; db, when not nil, is the lint of the
// revision's migrations, which run (after the lock) before the rollout it
// starts moves any traffic.
func (c *Controller) apply(ctx context.Context, req ApplyRequest, m *manifest.App, pins map[string]string, db *dbPlan) (ApplyResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing[m.Name] {
		return ApplyResult{}, fmt.Errorf("%w: %s is being deleted; apply it again in a moment", ErrConflict, m.Name)
	}
	a := c.apps[m.Name]
	if errs := c.check(ctx, req, m, a); len(errs) > 0 {
		return ApplyResult{}, errs
	}
	artifacts := withPins(req.Artifacts, pins)
	digest := Digest(m, artifacts)
	res := ApplyResult{App: m.Name}
	if a != nil {
		latest, err := c.revision(ctx, a, a.app.Latest)
		if err != nil {
			return res, err
		}
		same := latest.Digest == digest
		stable, err := c.stableWith(ctx, a, digest)
		if err != nil {
			return res, err
		}
		if !a.state.Phase.Final() {
			if same {
				res.Revision = latest.Number
				res.Rollout = a.rollout.ID
				res.Message = fmt.Sprintf("%s unchanged: revision %d is rolling out", m.Name, latest.Number)
				return res, nil
			}
			if a.migrating == a.rollout.ID {
				return res, migratingError(m.Name, a)
			}
			hint := ""
			if stable > 0 {
				hint = fmt.Sprintf(" (revision %d, the stable one, has this content: the abort returns to it)", stable)
			}
			return res, fmt.Errorf("%w: %s: rollout #%d to revision %d is %s; wait for it, or `lastgood abort %s`%s",
				ErrConflict, m.Name, a.rollout.ID, a.state.To, a.state.Phase, m.Name, hint)
		}
		if stable > 0 {
			res.Revision = stable
			res.Message = fmt.Sprintf("%s: nothing to do: revision %d (stable) has this content", m.Name, stable)
			return res, nil
		}
		if same {
			a.db = db
			return c.startRollout(ctx, a, latest.Revision, m.Strategy.Kind(), rolloutStart{why: "apply of an unchanged manifest"})
		}
	} else {
		if err := c.cfg.Traffic.Listen(m.Name, m.Listen); err != nil {
			return res, manifest.Errors{manifest.At(req.File, []byte(req.Manifest), "listen",
				fmt.Sprintf("cannot listen on %s: %s", m.Listen, listenError(err)))}
		}
		a = newAppState(store.App{Name: m.Name, Listen: m.Listen})
	}
	if err := c.openPreview(req, m, c.apps[m.Name]); err != nil {
		if c.apps[m.Name] == nil {
			c.cfg.Traffic.Close(m.Name)
		}
		return res, err
	}
	rev := store.Revision{
		App: m.Name, Digest: digest, Manifest: m.Canonical(), Source: req.File,
		Artifacts: artifacts, Origin: "apply",
	}
	a.db = db
	res, err := c.createAndStart(ctx, a, rev, m.Strategy.Kind())
	if err != nil {
		if stored := c.apps[m.Name]; stored == nil || stored.preview == "" {
			c.cfg.Traffic.Close(PreviewKey(m.Name))
		}
		if c.apps[m.Name] == nil {
			c.cfg.Traffic.Close(m.Name)
		}
	}
	return res, err
}

// stableWith returns a's stable revision when its content has digest, or 0.
func (c *Controller) stableWith(ctx context.Context, a *appState, digest string) (int, error) {
	if a.app.Stable == 0 {
		return 0, nil
	}
	stable, err := c.revision(ctx, a, a.app.Stable)
	if err != nil {
		return 0, err
	}
	if stable.Digest != digest {
		return 0, nil
	}
	return stable.Number, nil
}

// resolve asks the engine, when it is a Resolver, to pin what the
// manifest names outside lastgood; its problems point at the manifest's
// lines.
func (c *Controller) resolve(ctx context.Context, req ApplyRequest, m *manifest.App) (map[string]string, error) {
	r, ok := c.cfg.Engine.(Resolver)
	if !ok {
		return nil, nil
	}
	pins, err := r.Resolve(ctx, m)
	var errs manifest.Errors
	if err != nil && !errors.Is(err, manifest.ErrInvalid) {
		return nil, fmt.Errorf("%s: %w", m.Name, err) // the engine failed, not the manifest
	}
	if err != nil {
		for _, e := range asFieldErrors(err) {
			errs = append(errs, manifest.At(req.File, []byte(req.Manifest), e.Field, e.Message))
		}
		return nil, errs
	}
	for k := range pins {
		if _, clash := req.Artifacts[k]; clash {
			errs = append(errs, manifest.At(req.File, []byte(req.Manifest), "run.artifacts",
				fmt.Sprintf("%s is a name the engine pins (%s); rename the artifact", k, pins[k])))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return pins, nil
}

// check finds what makes a manifest impossible to roll out here, beyond
// what the manifest package already validated.
func (c *Controller) check(ctx context.Context, req ApplyRequest, m *manifest.App, a *appState) manifest.Errors {
	var errs manifest.Errors
	data := []byte(req.Manifest)
	add := func(field, format string, args ...any) {
		errs = append(errs, manifest.At(req.File, data, field, fmt.Sprintf(format, args...)))
	}
	var written []string
	field := map[string]string{}
	if m.Run != nil {
		written = slices.Clone(m.Run.Artifacts)
	}
	if k := m.Kubernetes; k != nil && k.Config != nil {
		for i, p := range k.Config.Files {
			written = append(written, p)
			field[p] = fmt.Sprintf("kubernetes.config.files[%d]", i)
		}
	}
	for _, p := range written {
		d, ok := req.Artifacts[p]
		f := cmp.Or(field[p], "run.artifacts")
		switch {
		case !ok:
			add(f, "%s was not uploaded with the manifest", p)
		case !c.cfg.HasArtifact(d):
			add(f, "%s: the server has no artifact %s", p, d)
		}
	}
	for p := range req.Artifacts {
		if !slices.Contains(written, p) && (m.Database == nil || !migrate.InDir(m.Database.Migrations, p)) {
			add("run.artifacts", "%s was uploaded but the manifest does not list it", p)
		}
	}
	if ch, ok := c.cfg.Engine.(Checker); ok && len(errs) == 0 {
		if err := ch.Check(Workload{App: m.Name, Manifest: m, Artifacts: req.Artifacts}); err != nil {
			for _, e := range asFieldErrors(err) {
				add(e.Field, "%s", e.Message)
			}
		}
	}
	for _, p := range analysis.Validate(m.Analysis) {
		add(p.Field, "%s", p.Message)
	}
	if a != nil && a.app.Listen != m.Listen {
		add("listen", "cannot change from %s to %s; an app keeps its address (to move it: `lastgood delete %s`, then apply again)", a.app.Listen, m.Listen, m.Name)
	}
	preview := previewOf(m)
	for name, o := range c.apps {
		if name == m.Name {
			continue
		}
		theirs := c.previewAddr(ctx, o)
		if m.Listen != "" && o.app.Listen == m.Listen { // apps on Kubernetes have none
			add("listen", "%s is already used by app %s", m.Listen, name)
		}
		if m.Listen != "" && m.Listen == theirs {
			add("listen", "%s is the blue-green preview address of app %s", m.Listen, name)
		}
		if preview != "" && o.app.Listen == preview {
			add("strategy.blueGreen.preview", "%s is already used by app %s", preview, name)
		}
		if preview != "" && preview == theirs {
			add("strategy.blueGreen.preview", "%s is the blue-green preview address of app %s too", preview, name)
		}
	}
	return errs
}

func previewOf(m *manifest.App) string {
	if bg := m.Strategy.BlueGreen; bg != nil {
		return bg.Preview
	}
	return ""
}

// previewAddr is the preview address an app serves or will serve: the one
// open now, else the one its latest revision names.
func (c *Controller) previewAddr(ctx context.Context, a *appState) string {
	if a.preview != "" {
		return a.preview
	}
	if m, err := c.manifest(ctx, a, a.app.Latest); err == nil {
		return previewOf(m)
	}
	return ""
}

// openPreview listens on a blue-green rollout's preview address at apply
// time, so that an address in use is refused with the manifest's line
// rather than found later.
// A first release has nothing to preview against, so its address is only
// checked.
func (c *Controller) openPreview(req ApplyRequest, m *manifest.App, a *appState) error {
	addr := previewOf(m)
	if addr == "" || (a != nil && a.preview == addr) {
		return nil
	}
	var err error
	if a == nil || a.app.Stable == 0 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			ln.Close()
		}
	} else {
		err = c.cfg.Traffic.Listen(PreviewKey(m.Name), addr)
	}
	if err != nil {
		return manifest.Errors{manifest.At(req.File, []byte(req.Manifest), "strategy.blueGreen.preview",
			fmt.Sprintf("cannot listen on %s: %s", addr, listenError(err)))}
	}
	return nil
}

// listenError keeps what the system said of a failed listen ("bind:
// address already in use") without repeating the address.
func listenError(err error) string {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// asFieldErrors keeps an engine's field errors, and wraps any other error
// as a problem of the run section.
func asFieldErrors(err error) manifest.Errors {
	if es, ok := errors.AsType[manifest.Errors](err); ok {
		return es
	}
	if e, ok := errors.AsType[*manifest.FieldError](err); ok {
		return manifest.Errors{e}
	}
	return manifest.Errors{{Field: "run", Message: err.Error()}}
}

// createAndStart stores a new revision and its rollout in one transaction.
func (c *Controller) createAndStart(ctx context.Context, a *appState, rev store.Revision, kind string) (ApplyResult, error) {
	now := c.cfg.Now()
	var created store.Revision
	var removed []string
	var pruned []int
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if a.app.Created.IsZero() {
			a := a.app
			msg := fmt.Sprintf("app %s created, listening on %s", a.Name, a.Listen)
			if old, err := tx.App(ctx, a.Name); err == nil && old.Deleted != nil {
				// applied again after `lastgood delete`: its history goes on
				msg = fmt.Sprintf("app %s created again after its delete, listening on %s; its revisions go on from %d",
					a.Name, a.Listen, old.Latest+1)
			}
			a.Created, a.Updated = now, now
			if err := tx.PutApp(a); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Time: now, App: a.Name, Type: "app.created", Message: msg, Actor: actorOf(ctx)}); err != nil {
				return err
			}
		}
		var err error
		rev.Created = now
		if created, err = tx.CreateRevision(rev); err != nil {
			return err
		}
		msg := fmt.Sprintf("revision %d created from %s", created.Number, created.Source)
		if created.Origin == "undo" {
			msg = fmt.Sprintf("revision %d created by undo: the content of revision %d", created.Number, created.CopyOf)
		}
		if _, err := tx.AppendEvent(store.Event{Time: now, App: a.app.Name, Revision: created.Number, Actor: actorOf(ctx),
			Type: "revision.created", Message: msg, Data: mustJSON(map[string]any{"digest": created.Digest})}); err != nil {
			return err
		}
		removed, pruned, err = c.prune(ctx, tx, a, created)
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("store revision: %w", err)
	}
	c.apps[a.app.Name] = a
	if a.app, err = c.cfg.Store.App(ctx, a.app.Name); err != nil {
		return ApplyResult{}, err
	}
	if len(removed) > 0 && c.cfg.RemoveArtifacts != nil {
		c.cfg.RemoveArtifacts(removed)
	}
	if len(pruned) > 0 && c.cfg.Pruned != nil {
		c.cfg.Pruned(a.app.Name, pruned)
	}
	res, err := c.startRollout(ctx, a, created, kind, rolloutStart{})
	res.Created = true
	return res, err
}

// rolloutStart says more about a rollout being started.
type rolloutStart struct {
	why string // said in the rollout.started event
	// instant marks an undo to the warm previous stable (State.Instant).
	instant bool
	// data is stored with the rollout.started event (an undo's --force).
	data map[string]any
}

// startRollout persists a new rollout of rev, then reconciles once so that
// whatever can happen at once (an undo's traffic switch) has happened when
// it returns.
func (c *Controller) startRollout(ctx context.Context, a *appState, rev store.Revision, kind string, how rolloutStart) (ApplyResult, error) {
	why := how.why
	m, err := c.manifest(ctx, a, rev.Number)
	if err != nil {
		return ApplyResult{}, err
	}
	spec := strategy.SpecOf(m)
	from, fromReplicas := a.app.Stable, 0
	if from > 0 {
		if fromReplicas = strategy.Desired(a.state).Replicas[from]; fromReplicas == 0 {
			sm, err := c.manifest(ctx, a, from)
			if err != nil {
				return ApplyResult{}, err
			}
			fromReplicas = sm.Replicas
		}
	}
	now := c.cfg.Now()
	db := a.db
	var unchanged []strategy.Event
	if a.db = nil; !db.pending() {
		unchanged = unchangedEvents(db, c.cfg.Database, rev.Number)
		db = nil
	}
	st := strategy.Start(kind, spec, from, rev.Number, fromReplicas, now)
	st.Instant = how.instant && st.Kind == strategy.Undo
	replicas := c.cfg.Engine.Replicas(a.app.Name)
	// restarts before the rollout do not count against either revision (an
	// undo that adopted warm replicas starts from theirs)
	st.RestartsSeen, st.FromRestartsBefore = count(replicas, rev.Number).Restarts, count(replicas, from).Restarts
	raw, _ := json.Marshal(st)
	r := store.Rollout{App: a.app.Name, From: from, To: rev.Number, Strategy: st.Kind,
		Phase: string(st.Phase), State: raw, Started: now, Updated: now}
	err = c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		var err error
		if r, err = tx.CreateRollout(r); err != nil {
			return err
		}
		msg := fmt.Sprintf("rollout #%d started: revision %d → %d (%s)", r.ID, from, rev.Number, st.Kind)
		if from == 0 {
			msg = fmt.Sprintf("rollout #%d started: first release, revision %d", r.ID, rev.Number)
		}
		if why != "" {
			msg += "; " + why
		}
		ev := store.Event{Time: now, App: a.app.Name, Rollout: r.ID, Revision: rev.Number, Type: "rollout.started", Message: msg, Actor: actorOf(ctx)}
		if how.data != nil {
			ev.Data = mustJSON(how.data)
		}
		_, err = tx.AppendEvent(ev)
		if err == nil && db != nil {
			err = appendEvents(tx, now, r, rev.Number, migrationEvents(db, c.cfg.Database.Where(db.cfg)), actorOf(ctx))
		}
		if err == nil && len(unchanged) > 0 {
			err = appendEvents(tx, now, r, rev.Number, unchanged, actorOf(ctx))
		}
		return err
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("store rollout: %w", err)
	}
	a.rollout, a.state = r, st
	c.baseHealth(a)
	res := ApplyResult{App: a.app.Name, Revision: rev.Number, Rollout: r.ID,
		Message: fmt.Sprintf("%s: rollout #%d to revision %d started (%s)", a.app.Name, r.ID, rev.Number, st.Kind)}
	if from > 0 && (st.Kind == strategy.Canary || st.Kind == strategy.BlueGreen) {
		res.Message += defaultChecksNote(m) + noChecksNote(m) // only these rollouts are judged
	}
	if note := windowNote(m, st); note != "" {
		res.Message += "\n" + note
	}
	if db != nil {
		// the migrations run first (runMigrations); nothing moves meanwhile
		db.rollout, a.migrating = r.ID, r.ID
		return res, nil
	}
	if err := c.reconcile(ctx, a.app.Name); err != nil {
		return res, err
	}
	c.Wake()
	return res, nil
}

// prune deletes the oldest revisions beyond the manifest's history limit,
// never the stable one or one the latest rollout uses, and returns the
// artifact digests no kept revision refers to and the revisions deleted.
func (c *Controller) prune(ctx context.Context, tx *store.Tx, a *appState, newest store.Revision) ([]string, []int, error) {
	m, err := manifest.FromJSON(newest.Manifest)
	if err != nil {
		return nil, nil, err
	}
	revs, err := tx.Revisions(ctx, a.app.Name)
	if err != nil {
		return nil, nil, err
	}
	excess := len(revs) - m.History
	if excess <= 0 {
		return nil, nil, nil
	}
	keep := map[int]bool{newest.Number: true, a.app.Stable: true, a.state.From: true, a.state.To: true}
	var drop []int
	used := map[string]bool{}
	for _, r := range revs {
		if excess > 0 && !keep[r.Number] {
			drop = append(drop, r.Number)
			excess--
			continue
		}
		for _, d := range r.Artifacts {
			used[d] = true
		}
	}
	var unused []string
	for _, r := range revs {
		if slices.Contains(drop, r.Number) {
			for _, d := range r.Artifacts {
				if !used[d] && !slices.Contains(unused, d) {
					unused = append(unused, d)
				}
			}
			delete(a.revisions, r.Number)
		}
	}
	if err := tx.DeleteRevisions(a.app.Name, drop); err != nil {
		return nil, nil, err
	}
	return unused, drop, nil
}

// windowNote says what the rollback window will judge the promoted
// revision against: the holdback its compare checks keep comparing with,
// or — with rollback.holdback 0 — what is lost.
func windowNote(m *manifest.App, st strategy.State) string {
	if st.From == 0 || st.Kind == strategy.Rolling || st.Kind == strategy.Undo || m.Rollback.Window == 0 || m.Analysis == nil {
		return ""
	}
	var compares []string
	for _, c := range m.Analysis.Checks {
		if c.Compare != nil {
			compares = append(compares, c.Name)
		}
	}
	if len(compares) == 0 {
		return ""
	}
	if h := m.Rollback.HoldbackPercent(); h > 0 {
		return fmt.Sprintf("after promotion %d%% of traffic stays on revision %d for the %s rollback window, so compare checks keep judging both revisions at the same moments (rollback.holdback)",
			h, st.From, m.Rollback.Window)
	}
	return fmt.Sprintf("rollback.holdback is 0: after promotion revision %d takes no traffic, so compare checks (%s) gather no evidence in the %s window; threshold checks, probes, crash loops and the other checks still judge it",
		st.From, strings.Join(compares, ", "), m.Rollback.Window)
}
