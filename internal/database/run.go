package database

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
)

// RunError is a run of migrations that failed; Run records what became of
// every statement.
type RunError struct {
	Run migrate.Run
	Err error
}

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

// step is one migration file of a run: its statements and the schema
// version once it has run.
type step struct {
	version uint64
	file    string
	stmts   []stmt
}

const versionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`

// Migrate runs the migrations after version from up to version to, in one
// transaction with the version update. A statement that cannot run in a
// transaction (its file holds nothing else) runs by itself between the
// transactions of the files around it. A failure rolls the transaction
// back: the schema and its version stay as they were before it, never
// dirty. The version read in the transaction must still be from.
func (d *Databases) Migrate(ctx context.Context, cfg *manifest.Database, set migrate.Set, from, to uint64) (migrate.Run, error) {
	drv, db, url, err := d.connect(ctx, cfg)
	if err != nil {
		return migrate.Run{Direction: "up", Before: from, After: from, Error: err.Error()}, err
	}
	defer db.Close()
	var steps []step
	for _, m := range set.Between(from, to) {
		stmts, err := d.script(drv, m.Up)
		if err != nil {
			return migrate.Run{Direction: "up", Database: drv.where(url), Before: from, After: from, Error: err.Error()}, err
		}
		steps = append(steps, step{version: m.Version, file: m.Up.Path, stmts: stmts})
	}
	return run(ctx, drv, db, drv.where(url), "up", from, steps)
}

// Revert runs the down files of migrations (last first) in one
// transaction, bringing the schema from version from to version to.
func (d *Databases) Revert(ctx context.Context, cfg *manifest.Database, migrations []migrate.Migration, from, to uint64) (migrate.Run, error) {
	drv, db, url, err := d.connect(ctx, cfg)
	if err != nil {
		return migrate.Run{Direction: "down", Before: from, After: from, Error: err.Error()}, err
	}
	defer db.Close()
	var steps []step
	for _, m := range migrations {
		if m.Down == nil {
			err := fmt.Errorf("%s has no down file", m)
			return migrate.Run{Direction: "down", Database: drv.where(url), Before: from, After: from, Error: err.Error()}, err
		}
		stmts, err := d.script(drv, *m.Down)
		if err != nil {
			return migrate.Run{Direction: "down", Database: drv.where(url), Before: from, After: from, Error: err.Error()}, err
		}
		steps = append(steps, step{version: m.Version - 1, file: m.Down.Path, stmts: stmts})
	}
	return run(ctx, drv, db, drv.where(url), "down", from, steps)
}

// run carries out steps from version before: consecutive steps in one
// transaction, a step whose statement must run alone by itself.
func run(ctx context.Context, drv driver, db *sql.DB, where, direction string, before uint64, steps []step) (migrate.Run, error) {
	r := migrate.Run{Direction: direction, Database: where, Before: before, After: before}
	for _, s := range steps {
		ran := migrate.Ran{Version: s.version, File: s.file}
		if direction == "down" {
			ran.Version = s.version + 1
		}
		for _, st := range s.stmts {
			ran.Statements = append(ran.Statements, migrate.RanStatement{Line: st.Line, SQL: st.SQL, Alone: st.Alone, Outcome: migrate.OutcomeNotRun})
		}
		r.Migrations = append(r.Migrations, ran)
	}
	fail := func(err error) (migrate.Run, error) {
		r.Error = err.Error()
		return r, &RunError{Run: r, Err: err}
	}
	for i := 0; i < len(steps); {
		if len(steps[i].stmts) == 1 && steps[i].stmts[0].Alone {
			if err := runAlone(ctx, drv, db, &r, i, steps[i]); err != nil {
				return fail(err)
			}
			i++
			continue
		}
		j := i
		for j < len(steps) && !(len(steps[j].stmts) == 1 && steps[j].stmts[0].Alone) {
			j++
		}
		if err := runTx(ctx, drv, db, &r, i, steps[i:j]); err != nil {
			return fail(err)
		}
		i = j
	}
	return r, nil
}

// runTx runs steps (whose records start at r.Migrations[first]) in one
// transaction, ending with the version update.
func runTx(ctx context.Context, drv driver, db *sql.DB, r *migrate.Run, first int, steps []step) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a transaction on %s: %s", r.Database, message(err))
	}
	defer tx.Rollback()
	if err := prepare(ctx, drv, tx, r); err != nil {
		return err
	}
	for k, s := range steps {
		rec := &r.Migrations[first+k]
		for n, st := range s.stmts {
			if _, err := tx.ExecContext(ctx, st.SQL); err != nil {
				rec.Statements[n].Outcome, rec.Statements[n].Error = migrate.OutcomeFailed, message(err)
				tx.Rollback()
				undone(r, first, first+k, n)
				return fmt.Errorf("%s:%d: %s: %s; the transaction was rolled back: %s is at schema version %d, as before",
					s.file, st.Line, oneLine(st.SQL), message(err), r.Database, r.After)
			}
			rec.Statements[n].Outcome = migrate.OutcomeApplied
		}
	}
	last := steps[len(steps)-1].version
	if err := setVersion(ctx, tx, last); err != nil {
		undone(r, first, first+len(steps), 0)
		return fmt.Errorf("record schema version %d on %s: %s; nothing was committed", last, r.Database, message(err))
	}
	if err := tx.Commit(); err != nil {
		undone(r, first, first+len(steps), 0)
		return fmt.Errorf("commit migrations on %s: %s; nothing was committed", r.Database, message(err))
	}
	r.After = last
	return nil
}

// prepare creates the version table when there is none, locks it, and
// checks the version is still the one the run starts from.
func prepare(ctx context.Context, drv driver, tx *sql.Tx, r *migrate.Run) error {
	if err := drv.lock(ctx, tx); err != nil {
		return fmt.Errorf("lock %s for migrations: %s", r.Database, message(err))
	}
	if _, err := tx.ExecContext(ctx, versionTable); err != nil {
		return fmt.Errorf("create schema_migrations on %s: %s", r.Database, message(err))
	}
	v, err := version(ctx, drv, tx, r.Database)
	if err != nil {
		return err
	}
	if v != r.After {
		return fmt.Errorf("%w: %s is at schema version %d, not %d as when lint ran; apply again", ErrMoved, r.Database, v, r.After)
	}
	return nil
}

func setVersion(ctx context.Context, q querier, v uint64) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM schema_migrations`); err != nil {
		return err
	}
	if v == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, fmt.Sprintf(`INSERT INTO schema_migrations (version, dirty) VALUES (%d, false)`, v))
	return err
}

// undone marks the statements that had run in the rolled-back transaction
// (records first to upto, and statements before n of record upto).
func undone(r *migrate.Run, first, upto, n int) {
	for i := first; i <= upto && i < len(r.Migrations); i++ {
		for k := range r.Migrations[i].Statements {
			st := &r.Migrations[i].Statements[k]
			if st.Outcome == migrate.OutcomeApplied && (i < upto || k < n) {
				st.Outcome = migrate.OutcomeRolledBack
			}
		}
	}
}

// runAlone runs a step's one statement outside any transaction, then
// records the version. A CREATE INDEX CONCURRENTLY that fails leaves an
// invalid index behind, which is dropped again.
func runAlone(ctx context.Context, drv driver, db *sql.DB, r *migrate.Run, i int, s step) error {
	rec := &r.Migrations[i].Statements[0]
	st := s.stmts[0]
	check, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a transaction on %s: %s", r.Database, message(err))
	}
	err = prepare(ctx, drv, check, r)
	check.Rollback()
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %s", r.Database, message(err))
	}
	defer conn.Close()
	if n, ok := drv.(interrupted); ok {
		// the session names itself, so that a restart after lastgood
		// stopped during the statement finds it (Recover)
		if err := n.markAlone(ctx, conn); err != nil {
			return fmt.Errorf("name the session on %s: %s", r.Database, message(err))
		}
	}
	if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
		rec.Outcome, rec.Error = migrate.OutcomeFailed, message(err)
		msg := ""
		if st.index != "" {
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, derr := db.ExecContext(cleanup, "DROP INDEX CONCURRENTLY IF EXISTS "+st.index); derr == nil {
				msg = "; the invalid index it left was dropped"
			}
		}
		return fmt.Errorf("%s:%d: %s (run by itself, outside a transaction): %s%s; %s is at schema version %d",
			s.file, st.Line, oneLine(st.SQL), message(err), msg, r.Database, r.After)
	}
	rec.Outcome = migrate.OutcomeApplied
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a transaction on %s: %s", r.Database, message(err))
	}
	defer tx.Rollback()
	if err := setVersion(ctx, tx, s.version); err != nil {
		return fmt.Errorf("record schema version %d on %s: %s", s.version, r.Database, message(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record schema version %d on %s: %s", s.version, r.Database, message(err))
	}
	r.After = s.version
	return nil
}
