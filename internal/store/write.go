package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/redact"
)

// PutApp creates the app or updates its Listen and Stable. Latest is kept
// by CreateRevision and ignored here; Created is kept on update (and taken
// from a when set on create); Updated becomes now. Stable must be 0 or an
// existing revision. Putting a deleted app brings it back (Deleted is
// cleared), with its revision numbers continuing from Latest.
func (t *Tx) PutApp(a App) error {
	if a.Name == "" {
		return fmt.Errorf("put app: %w: empty name", ErrInvalid)
	}
	if a.Stable != 0 {
		if _, err := t.Revision(t.ctx, a.Name, a.Stable); err != nil {
			return fmt.Errorf("put app %q: stable: %w", a.Name, err)
		}
	}
	ts := now()
	created := ts
	if !a.Created.IsZero() {
		created = a.Created
	}
	_, err := t.tx.ExecContext(t.ctx, `
		INSERT INTO apps (name, listen, stable, latest, created, updated) VALUES (?, ?, ?, 0, ?, ?)
		ON CONFLICT (name) DO UPDATE SET listen = excluded.listen, stable = excluded.stable, updated = excluded.updated,
			deleted = NULL`,
		a.Name, a.Listen, a.Stable, timeText(created), timeText(ts))
	if err != nil {
		return fmt.Errorf("put app %q: %w", a.Name, err)
	}
	return nil
}

// DeleteApp marks the app deleted at the given time (now when zero) and
// clears its stable revision: nothing of it runs any more. Its revisions,
// rollouts and events are kept. It fails with ErrNotFound for an app that
// does not exist or is already deleted, and with ErrActiveRollout while
// the app has an unfinished rollout.
func (t *Tx) DeleteApp(name string, at time.Time) error {
	a, err := t.App(t.ctx, name)
	if err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	if a.Deleted != nil {
		return fmt.Errorf("delete app %q: %w: already deleted", name, ErrNotFound)
	}
	if active, err := t.ActiveRollout(t.ctx, name); err == nil {
		return fmt.Errorf("delete app %q: %w: rollout %d is %s", name, ErrActiveRollout, active.ID, active.Phase)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete app %q: %w", name, err)
	}
	ts := timeText(stamp(at))
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE apps SET deleted = ?, stable = 0, updated = ? WHERE name = ?`,
		ts, ts, name); err != nil {
		return fmt.Errorf("delete app %q: %w", name, err)
	}
	return nil
}

// CreateRevision stores rev as the app's next revision: its Number is the
// app's Latest plus one (any Number passed in is ignored), and it becomes
// the app's Latest. Created is set to now unless given.
func (t *Tx) CreateRevision(rev Revision) (Revision, error) {
	app, err := t.App(t.ctx, rev.App)
	if err != nil {
		return Revision{}, fmt.Errorf("create revision: %w", err)
	}
	if err := validRevision(rev); err != nil {
		return Revision{}, fmt.Errorf("create revision of %q: %w", rev.App, err)
	}
	artifacts, err := json.Marshal(rev.Artifacts)
	if err != nil {
		return Revision{}, fmt.Errorf("create revision of %q: artifacts: %w", rev.App, err)
	}
	if len(rev.Artifacts) == 0 {
		rev.Artifacts, artifacts = nil, []byte("{}")
	}
	rev.Number = app.Latest + 1
	rev.Created = stamp(rev.Created)
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO revisions (`+revisionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rev.App, rev.Number, rev.Digest, string(rev.Manifest), rev.Source, string(artifacts),
		rev.Origin, rev.CopyOf, timeText(rev.Created)); err != nil {
		return Revision{}, fmt.Errorf("create revision %d of %q: %w", rev.Number, rev.App, err)
	}
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE apps SET latest = ?, updated = ? WHERE name = ?`,
		rev.Number, timeText(now()), rev.App); err != nil {
		return Revision{}, fmt.Errorf("create revision %d of %q: %w", rev.Number, rev.App, err)
	}
	return rev, nil
}

func validRevision(rev Revision) error {
	var errs []error
	if rev.Digest == "" {
		errs = append(errs, errors.New("empty digest"))
	}
	if !json.Valid(rev.Manifest) {
		errs = append(errs, errors.New("manifest is not valid JSON"))
	}
	switch {
	case rev.Origin != OriginApply && rev.Origin != OriginUndo:
		errs = append(errs, fmt.Errorf("origin %q is neither %q nor %q", rev.Origin, OriginApply, OriginUndo))
	case rev.Origin == OriginUndo && rev.CopyOf <= 0:
		errs = append(errs, errors.New("an undo revision must name the revision it copies (CopyOf)"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// DeleteRevisions removes revisions of app, for history pruning. It refuses,
// with ErrInUse, to delete the stable revision or one that an unfinished
// rollout moves from or to, and fails with ErrNotFound for a revision that
// does not exist; either way nothing is deleted. Numbers are never reused.
func (t *Tx) DeleteRevisions(app string, numbers []int) error {
	a, err := t.App(t.ctx, app)
	if err != nil {
		return fmt.Errorf("delete revisions: %w", err)
	}
	active, err := t.ActiveRollout(t.ctx, app)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete revisions of %q: %w", app, err)
	}
	hasActive := err == nil
	for _, n := range numbers {
		switch {
		case n == a.Stable:
			return fmt.Errorf("delete revision %d of %q: %w: it is the stable revision", n, app, ErrInUse)
		case hasActive && (n == active.From || n == active.To):
			return fmt.Errorf("delete revision %d of %q: %w: unfinished rollout %d moves %d -> %d", n, app, ErrInUse, active.ID, active.From, active.To)
		}
	}
	for _, n := range numbers {
		res, err := t.tx.ExecContext(t.ctx, `DELETE FROM revisions WHERE app = ? AND number = ?`, app, n)
		if err != nil {
			return fmt.Errorf("delete revision %d of %q: %w", n, app, err)
		}
		if c, err := res.RowsAffected(); err != nil || c == 0 {
			return fmt.Errorf("delete revision %d of %q: %w", n, app, ErrNotFound)
		}
	}
	return nil
}

// CreateRollout stores a new rollout and returns it with its ID and its
// Number (the app's previous highest plus one; any passed in is ignored). An app has
// at most one unfinished rollout: creating a second fails with
// ErrActiveRollout. Started is set to now unless given; Updated equals
// Started; Ended is set when the rollout is created already done.
func (t *Tx) CreateRollout(ro Rollout) (Rollout, error) {
	if _, err := t.App(t.ctx, ro.App); err != nil {
		return Rollout{}, fmt.Errorf("create rollout: %w", err)
	}
	if err := validRollout(ro); err != nil {
		return Rollout{}, fmt.Errorf("create rollout of %q: %w", ro.App, err)
	}
	if !ro.Done() {
		if active, err := t.ActiveRollout(t.ctx, ro.App); err == nil {
			return Rollout{}, fmt.Errorf("create rollout of %q: %w: rollout %d is %s", ro.App, ErrActiveRollout, active.ID, active.Phase)
		} else if !errors.Is(err, ErrNotFound) {
			return Rollout{}, fmt.Errorf("create rollout of %q: %w", ro.App, err)
		}
	}
	if err := t.tx.QueryRowContext(t.ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM rollouts WHERE app = ?`,
		ro.App).Scan(&ro.Number); err != nil {
		return Rollout{}, fmt.Errorf("create rollout of %q: number it: %w", ro.App, err)
	}
	ro.Started = stamp(ro.Started)
	ro.Updated = ro.Started
	ro.Ended = endTime(ro, nil, ro.Started)
	res, err := t.tx.ExecContext(t.ctx, `INSERT INTO rollouts
		(app, number, from_rev, to_rev, strategy, phase, step, state, trigger, reason, started, updated, ended)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ro.App, ro.Number, ro.From, ro.To, ro.Strategy, ro.Phase, ro.Step, nullJSON(ro.State),
		ro.Trigger, ro.Reason, timeText(ro.Started), timeText(ro.Updated), nullTime(ro.Ended))
	if err != nil {
		return Rollout{}, fmt.Errorf("create rollout of %q: %w", ro.App, err)
	}
	if ro.ID, err = res.LastInsertId(); err != nil {
		return Rollout{}, fmt.Errorf("create rollout of %q: %w", ro.App, err)
	}
	return ro, nil
}

// UpdateRollout saves the rollout's Phase, Step, State, Trigger and Reason;
// App, From, To, Strategy and Started never change and are ignored. Updated
// becomes now, and Ended is set (to now unless given) when the phase is
// final. A rollout that has ended cannot change phase again, with one
// exception: a promoted rollout can be rolled back inside its rollback
// window.
func (t *Tx) UpdateRollout(ro Rollout) error {
	old, err := t.Rollout(t.ctx, ro.ID)
	if err != nil {
		return fmt.Errorf("update rollout: %w", err)
	}
	if err := validRollout(ro); err != nil {
		return fmt.Errorf("update rollout %d: %w", ro.ID, err)
	}
	if old.Done() && ro.Phase != old.Phase && (old.Phase != PhasePromoted || ro.Phase != PhaseRolledBack) {
		return fmt.Errorf("update rollout %d: %w: it already ended %s", ro.ID, ErrInvalid, old.Phase)
	}
	ts := now()
	ended := endTime(ro, old.Ended, ts)
	_, err = t.tx.ExecContext(t.ctx, `UPDATE rollouts SET phase = ?, step = ?, state = ?, trigger = ?, reason = ?,
		updated = ?, ended = ? WHERE id = ?`,
		ro.Phase, ro.Step, nullJSON(ro.State), ro.Trigger, ro.Reason, timeText(ts), nullTime(ended), ro.ID)
	if err != nil {
		return fmt.Errorf("update rollout %d: %w", ro.ID, err)
	}
	return nil
}

func validRollout(ro Rollout) error {
	if !validPhase(ro.Phase) {
		return fmt.Errorf("%w: unknown phase %q", ErrInvalid, ro.Phase)
	}
	if len(ro.State) > 0 && !json.Valid(ro.State) {
		return fmt.Errorf("%w: state is not valid JSON", ErrInvalid)
	}
	return nil
}

// endTime is when a rollout ended: nil while it runs; otherwise the time
// given, the time already stored, or at.
func endTime(ro Rollout, stored *time.Time, at time.Time) *time.Time {
	switch {
	case !ro.Done():
		return nil
	case ro.Ended != nil:
		e := ro.Ended.UTC().Round(0)
		return &e
	case stored != nil:
		return stored
	default:
		return &at
	}
}

// AppendEvent adds e to the log and returns it as stored: with the next
// Seq, Time set to now unless given, Data compacted, and PrevHash and Hash
// linking it into the chain. Subscribers see it once the Update commits.
func (t *Tx) AppendEvent(e Event) (Event, error) {
	if e.Type == "" {
		return Event{}, fmt.Errorf("append event: %w: empty type", ErrInvalid)
	}
	var data bytes.Buffer
	if len(e.Data) > 0 {
		if err := json.Compact(&data, e.Data); err != nil {
			return Event{}, fmt.Errorf("append %s event: %w: data is not valid JSON: %w", e.Type, ErrInvalid, err)
		}
		// Secrets are redacted on write, so the log — and its hash chain —
		// never holds one (docs/redaction.md).
		data.Reset()
		json.Compact(&data, redact.JSON(e.Data))
	}
	e.Message = redact.Text(e.Message)
	var head record
	if err := t.tx.QueryRowContext(t.ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&head.seq, &head.hash); err != nil {
		return Event{}, fmt.Errorf("append %s event: read chain head: %w", e.Type, err)
	}
	e.Time = stamp(e.Time)
	r := record{
		seq: head.seq + 1, time: timeText(e.Time), app: e.App, rollout: e.Rollout, revision: int64(e.Revision),
		typ: e.Type, message: e.Message, data: data.String(), actor: e.Actor, prevHash: head.hash,
	}
	r.hash = chainHash(r.prevHash, r)
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO events (`+eventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.seq, r.time, r.app, r.rollout, r.revision, r.typ, r.message, nullString(r.data), r.actor, r.prevHash, r.hash); err != nil {
		return Event{}, fmt.Errorf("append event %d: %w", r.seq, err)
	}
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1`, r.seq, r.hash); err != nil {
		return Event{}, fmt.Errorf("append event %d: move chain head: %w", r.seq, err)
	}
	stored, err := r.event()
	if err != nil {
		return Event{}, fmt.Errorf("append event %d: %w", r.seq, err)
	}
	t.appended = append(t.appended, stored)
	return stored, nil
}

// stamp returns t as the store keeps times, or now when t is zero.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC().Round(0)
}

func nullJSON(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return timeText(*t)
}
