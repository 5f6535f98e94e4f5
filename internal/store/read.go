package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// queryer is what reads need: the database itself or an open transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader holds the read methods shared by Store and Tx.
type reader struct {
	q queryer
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

const appColumns = `name, listen, stable, latest, created, updated, deleted`

// App returns the named app, deleted or not, or ErrNotFound.
func (r reader) App(ctx context.Context, name string) (App, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE name = ?`, name)
	a, err := scanApp(row)
	if err != nil {
		return App{}, fmt.Errorf("app %q: %w", name, notFound(err))
	}
	return a, nil
}

// Apps returns every app that is not deleted, by name.
func (r reader) Apps(ctx context.Context) ([]App, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+appColumns+` FROM apps WHERE deleted IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	apps, err := collect(rows, scanApp)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

func scanApp(s rowScanner) (App, error) {
	var a App
	var created, updated string
	var deleted sql.NullString
	if err := s.Scan(&a.Name, &a.Listen, &a.Stable, &a.Latest, &created, &updated, &deleted); err != nil {
		return App{}, err
	}
	var err error
	if a.Created, err = parseTime(created); err != nil {
		return App{}, err
	}
	if a.Updated, err = parseTime(updated); err != nil {
		return App{}, err
	}
	if deleted.Valid {
		t, err := parseTime(deleted.String)
		if err != nil {
			return App{}, err
		}
		a.Deleted = &t
	}
	return a, nil
}

const revisionColumns = `app, number, digest, manifest, source, artifacts, origin, copy_of, created`

// Revision returns revision n of app, or ErrNotFound.
func (r reader) Revision(ctx context.Context, app string, n int) (Revision, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM revisions WHERE app = ? AND number = ?`, app, n)
	rev, err := scanRevision(row)
	if err != nil {
		return Revision{}, fmt.Errorf("revision %d of %q: %w", n, app, notFound(err))
	}
	return rev, nil
}

// Revisions returns every kept revision of app, oldest first.
func (r reader) Revisions(ctx context.Context, app string) ([]Revision, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+revisionColumns+` FROM revisions WHERE app = ? ORDER BY number`, app)
	if err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", app, err)
	}
	revs, err := collect(rows, scanRevision)
	if err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", app, err)
	}
	return revs, nil
}

// RevisionByDigest returns the newest revision of app with this content
// digest, or ErrNotFound.
func (r reader) RevisionByDigest(ctx context.Context, app, digest string) (Revision, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM revisions
		WHERE app = ? AND digest = ? ORDER BY number DESC LIMIT 1`, app, digest)
	rev, err := scanRevision(row)
	if err != nil {
		return Revision{}, fmt.Errorf("revision of %q with digest %s: %w", app, digest, notFound(err))
	}
	return rev, nil
}

func scanRevision(s rowScanner) (Revision, error) {
	var rev Revision
	var manifest, artifacts, created string
	if err := s.Scan(&rev.App, &rev.Number, &rev.Digest, &manifest, &rev.Source,
		&artifacts, &rev.Origin, &rev.CopyOf, &created); err != nil {
		return Revision{}, err
	}
	rev.Manifest = json.RawMessage(manifest)
	if err := json.Unmarshal([]byte(artifacts), &rev.Artifacts); err != nil {
		return Revision{}, fmt.Errorf("revision %d artifacts: %w", rev.Number, err)
	}
	if len(rev.Artifacts) == 0 {
		rev.Artifacts = nil
	}
	var err error
	rev.Created, err = parseTime(created)
	return rev, err
}

const rolloutColumns = `id, app, number, from_rev, to_rev, strategy, phase, step, state, trigger, reason, started, updated, ended`

// Rollout returns the rollout with this ID, or ErrNotFound.
func (r reader) Rollout(ctx context.Context, id int64) (Rollout, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE id = ?`, id)
	ro, err := scanRollout(row)
	if err != nil {
		return Rollout{}, fmt.Errorf("rollout %d: %w", id, notFound(err))
	}
	return ro, nil
}

// ActiveRollout returns app's unfinished rollout, or ErrNotFound if it has none.
func (r reader) ActiveRollout(ctx context.Context, app string) (Rollout, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE app = ? AND ended IS NULL`, app)
	ro, err := scanRollout(row)
	if err != nil {
		return Rollout{}, fmt.Errorf("active rollout of %q: %w", app, notFound(err))
	}
	return ro, nil
}

// Rollouts returns app's rollouts, newest first; every app's when app is
// empty. A limit of 0 means no limit.
func (r reader) Rollouts(ctx context.Context, app string, limit int) ([]Rollout, error) {
	query := `SELECT ` + rolloutColumns + ` FROM rollouts WHERE (? = '' OR app = ?) ORDER BY id DESC`
	args := []any{app, app}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("rollouts of %q: %w", app, err)
	}
	ros, err := collect(rows, scanRollout)
	if err != nil {
		return nil, fmt.Errorf("rollouts of %q: %w", app, err)
	}
	return ros, nil
}

// UnfinishedRollouts returns every rollout that has not ended, oldest first:
// the ones to decide after a restart.
func (r reader) UnfinishedRollouts(ctx context.Context) ([]Rollout, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE ended IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("unfinished rollouts: %w", err)
	}
	ros, err := collect(rows, scanRollout)
	if err != nil {
		return nil, fmt.Errorf("unfinished rollouts: %w", err)
	}
	return ros, nil
}

func scanRollout(s rowScanner) (Rollout, error) {
	var ro Rollout
	var state, ended sql.NullString
	var started, updated string
	if err := s.Scan(&ro.ID, &ro.App, &ro.Number, &ro.From, &ro.To, &ro.Strategy, &ro.Phase, &ro.Step,
		&state, &ro.Trigger, &ro.Reason, &started, &updated, &ended); err != nil {
		return Rollout{}, err
	}
	if state.Valid {
		ro.State = json.RawMessage(state.String)
	}
	var err error
	if ro.Started, err = parseTime(started); err != nil {
		return Rollout{}, err
	}
	if ro.Updated, err = parseTime(updated); err != nil {
		return Rollout{}, err
	}
	if ended.Valid {
		t, err := parseTime(ended.String)
		if err != nil {
			return Rollout{}, err
		}
		ro.Ended = &t
	}
	return ro, nil
}

const eventColumns = `seq, time, app, rollout, revision, type, message, data, actor, prev_hash, hash`

// LastSeq returns the sequence number of the newest event, 0 for an empty
// log: where a follower that wants no history starts.
func (r reader) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := r.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last event: %w", err)
	}
	return seq, nil
}

// Events returns the events q selects, in log order.
func (r reader) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	var where []string
	var args []any
	if q.App != "" {
		where, args = append(where, "app = ?"), append(args, q.App)
	}
	if q.Rollout != 0 {
		where, args = append(where, "rollout = ?"), append(args, q.Rollout)
	}
	if q.AfterSeq != 0 {
		where, args = append(where, "seq > ?"), append(args, q.AfterSeq)
	}
	query := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY seq`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	evs, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return evs, nil
}

func scanEvent(s rowScanner) (Event, error) {
	rec, err := scanRecord(s)
	if err != nil {
		return Event{}, err
	}
	return rec.event()
}

// collect scans every row, closing rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// notFound turns sql.ErrNoRows into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}
