package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
)

// interrupted is what a driver whose statements can run outside a
// transaction (PostgreSQL) offers to settle one that lastgood stopped
// during.
type interrupted interface {
	// markAlone names the session that runs a statement by itself.
	markAlone(ctx context.Context, conn *sql.Conn) error
	// orphans are the sessions still running sql for a lastgood that
	// stopped (the server may have cut the query's text short).
	orphans(ctx context.Context, q querier, sql string) ([]int64, error)
	// cancel cancels a session's statement and waits until it no longer
	// runs.
	cancel(ctx context.Context, q querier, pid int64) error
	// indexState says whether index exists and whether it is valid.
	indexState(ctx context.Context, q querier, index string) (exists, valid bool, err error)
}

// settleWait bounds how long Recover waits for a cancelled statement to
// end on the server.
const settleWait = time.Minute

// Recover settles, after lastgood stopped while Migrate ran from version
// from to version to (kill -9, a power cut), what the database's own
// version cannot say. Migrations in a transaction committed or did not.
// A statement that runs by itself (CREATE INDEX CONCURRENTLY) may have
// been left half way: PostgreSQL goes on running it for a client that is
// gone, and an interrupted concurrent build leaves an INVALID index
// behind. The policy, the same every time:
//
//   - a build still running for the stopped lastgood is cancelled: the
//     restart does not wait hours for it, and a rollout a restart
//     interrupts is rolled back anyway;
//   - an invalid index it left is dropped (DROP INDEX CONCURRENTLY): the
//     schema is exactly at the version recorded, as after a failed build;
//   - a valid index means the build finished and lastgood stopped before
//     recording its version: the version is recorded now, since the
//     schema is exactly at it (the statement is alone in its file).
//
// Other statements that run by itself (REINDEX, DROP INDEX CONCURRENTLY,
// VACUUM) cannot be told done from not done: Notes says so and the
// version stays. migrations are the rollout's (from+1 to to).
func (d *Databases) Recover(ctx context.Context, cfg *manifest.Database, migrations []migrate.Migration, from, to uint64) (migrate.Recovery, error) {
	drv, db, url, err := d.connect(ctx, cfg)
	if err != nil {
		return migrate.Recovery{}, err
	}
	defer db.Close()
	where := drv.where(url)
	v, err := version(ctx, drv, db, where)
	if err != nil {
		return migrate.Recovery{}, err
	}
	rec := migrate.Recovery{Version: v}
	if v < from || v >= to {
		return rec, nil
	}
	var next *migrate.Migration
	for i := range migrations {
		if migrations[i].Version == v+1 {
			next = &migrations[i]
		}
	}
	if next == nil {
		return rec, nil
	}
	stmts, err := d.script(drv, next.Up)
	if err != nil || len(stmts) != 1 || !stmts[0].Alone {
		return rec, nil // in a transaction: it did not commit
	}
	st := stmts[0]
	at := fmt.Sprintf("%s:%d (%s, which runs by itself, outside a transaction)", next.Up.Path, st.Line, oneLine(st.SQL))
	n, ok := drv.(interrupted)
	if !ok {
		return rec, nil
	}
	pids, err := n.orphans(ctx, db, st.SQL)
	if err != nil {
		return rec, fmt.Errorf("look for %s still running on %s: %s", at, where, message(err))
	}
	for _, pid := range pids {
		if err := n.cancel(ctx, db, pid); err != nil {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%s was still running on the server for the stopped lastgood (session %d), and cancelling it failed: %s; "+
				"it may still finish: check the schema by hand", at, pid, message(err)))
			return rec, nil
		}
		rec.Notes = append(rec.Notes, fmt.Sprintf("%s was still running on the server for the stopped lastgood (session %d): cancelled", at, pid))
	}
	if st.index == "" {
		rec.Notes = append(rec.Notes, fmt.Sprintf("%s may have run, in part or in whole: lastgood cannot tell, so %s stays at schema version %d; check it by hand", at, where, v))
		return rec, nil
	}
	exists, valid, err := n.indexState(ctx, db, st.index)
	switch {
	case err != nil:
		return rec, fmt.Errorf("look for the index %s on %s: %s", st.index, where, message(err))
	case !exists:
		if len(pids) == 0 {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%s had not started: no index %s", at, st.index))
		}
	case !valid:
		drop := "DROP INDEX CONCURRENTLY IF EXISTS " + st.index
		if _, err := db.ExecContext(ctx, drop); err != nil {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%s was interrupted and left the invalid index %s, and dropping it failed: %s; drop it by hand: %s",
				at, st.index, message(err), drop))
			return rec, nil
		}
		rec.Notes = append(rec.Notes, fmt.Sprintf("%s was interrupted and left the invalid index %s (PostgreSQL keeps one when a concurrent build stops): dropped, so the schema is exactly at version %d", at, st.index, v))
	default:
		if err := recordVersion(ctx, drv, db, where, v, next.Version); err != nil {
			return rec, err
		}
		rec.Version = next.Version
		rec.Notes = append(rec.Notes, fmt.Sprintf("%s had finished, and lastgood stopped before recording its version: the index %s is valid, so schema version %d is recorded now", at, st.index, next.Version))
	}
	return rec, nil
}

// recordVersion sets the version from from to to, under the migrations'
// lock, if it is still from.
func recordVersion(ctx context.Context, drv driver, db *sql.DB, where string, from, to uint64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a transaction on %s: %s", where, message(err))
	}
	defer tx.Rollback()
	if err := prepare(ctx, drv, tx, &migrate.Run{Database: where, Before: from, After: from}); err != nil {
		return err
	}
	if err := setVersion(ctx, tx, to); err != nil {
		return fmt.Errorf("record schema version %d on %s: %s", to, where, message(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record schema version %d on %s: %s", to, where, message(err))
	}
	return nil
}

// aloneApp is the application_name of a session that runs a statement by
// itself.
const aloneApp = "lastgood migrate"

func (postgres) markAlone(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT set_config('application_name', $1, false)`, aloneApp)
	return err
}

func (postgres) orphans(ctx context.Context, q querier, stmt string) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND application_name = $1 AND state <> 'idle' AND query <> '' AND starts_with(rtrim($2, E'; \n\t'), rtrim(query, E'; \n\t')) ORDER BY pid`, aloneApp, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var pid int64
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		out = append(out, pid)
	}
	return out, rows.Err()
}

func (postgres) cancel(ctx context.Context, q querier, pid int64) error {
	var ok bool
	if err := q.QueryRowContext(ctx, `SELECT pg_cancel_backend($1)`, pid).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("PostgreSQL did not signal session %d", pid)
	}
	deadline := time.Now().Add(settleWait)
	for {
		var running bool
		err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active')`, pid).Scan(&running)
		if err != nil {
			return err
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session %d still runs %s after it was cancelled", pid, settleWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (postgres) indexState(ctx context.Context, q querier, index string) (exists, valid bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, index).Scan(&valid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	return err == nil, valid, err
}
