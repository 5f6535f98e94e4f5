package database

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/migrate"
)

// gatedSQL makes an index expression that waits while the sequence gate
// is at 1: a concurrent build over rows of users runs until the test
// opens the gate (setval 2). A sequence is read outside MVCC, so the
// build's own snapshot sees the change.
const gatedSQL = `CREATE TABLE users (id integer PRIMARY KEY, name text);
CREATE SEQUENCE gate;
CREATE FUNCTION gated(i integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		EXIT WHEN (SELECT last_value FROM gate) > 1;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN i;
END $$;
INSERT INTO users VALUES (1, 'ada'), (2, 'bob');`

// interruptedIndex is a database at version 1 whose migration 002 is a
// concurrent index build over the gated expression.
func interruptedIndex(t *testing.T) (target, *Databases, migrate.Set) {
	tg := newPostgres(t)
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{
		"001_init.up.sql":  gatedSQL,
		"002_index.up.sql": "CREATE INDEX CONCURRENTLY users_gated ON users (gated(id));",
	})
	released(t, d, tg, set)
	return tg, d, set
}

// building starts migration 002 on a connection of its own, named as
// Migrate names it, and returns once the server runs it; the build waits
// at the gate. done gets the statement's error.
func building(t *testing.T, tg target, set migrate.Set) (done chan error) {
	t.Helper()
	db, err := sql.Open("pgx", tg.cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := (postgres{}).markAlone(ctx(t), conn); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() {
		defer conn.Close()
		_, err := conn.ExecContext(ctx(t), "CREATE INDEX CONCURRENTLY users_gated ON users (gated(id));")
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var n int
		// running, and past its first phase: the index is in the catalog
		err := tg.db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'
			AND EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('users_gated'))`, aloneApp).Scan(&n)
		if err == nil && n == 1 {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatalf("the build did not start: %d, %v", n, err)
		}
	}
}

func indexState(t *testing.T, tg target) string {
	t.Helper()
	var state string
	err := tg.db.QueryRow(`SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END
		FROM pg_index WHERE indexrelid = to_regclass('users_gated')), 'none')`).Scan(&state)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func recoverAndCheck(t *testing.T, d *Databases, tg target, set migrate.Set, version uint64, notes ...string) {
	t.Helper()
	rec, err := d.Recover(ctx(t), tg.cfg, set.Between(1, 2), 1, 2)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	got := strings.Join(rec.Notes, " | ")
	for _, want := range notes {
		if !strings.Contains(got, want) {
			t.Errorf("notes %q, want %q", got, want)
		}
	}
	if rec.Version != version {
		t.Errorf("recovered at version %d, want %d", rec.Version, version)
	}
	if v, err := d.Version(ctx(t), tg.cfg); err != nil || v != version {
		t.Errorf("the database is at version %d, %v; want %d", v, err, version)
	}
}

// lastgood stopped while a CREATE INDEX CONCURRENTLY ran, and the server
// still builds it for the gone client: Recover cancels the build and drops
// the invalid index it leaves; the schema is exactly at the old version.
func TestRecoverCancelsAnOrphanedIndexBuild(t *testing.T) {
	tg, d, set := interruptedIndex(t)
	done := building(t, tg, set)
	if s := indexState(t, tg); s != "invalid" {
		t.Fatalf("while it builds, the index is %s", s)
	}
	recoverAndCheck(t, d, tg, set, 1,
		"migrations/002_index.up.sql:1 (CREATE INDEX CONCURRENTLY users_gated ON users (gated(id)), which runs by itself, outside a transaction) was still running on the server for the stopped lastgood",
		"cancelled", `left the invalid index "users_gated"`, "dropped, so the schema is exactly at version 1")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "canceling statement") {
		t.Errorf("the build ended with %v, want it cancelled", err)
	}
	if s := indexState(t, tg); s != "none" {
		t.Errorf("after recovery the index is %s", s)
	}
	// the release can run again
	if _, err := tg.db.Exec(`SELECT setval('gate', 2)`); err != nil {
		t.Fatal(err)
	}
	if run, err := d.Migrate(ctx(t), tg.cfg, set, 1, 2); err != nil || run.After != 2 {
		t.Fatalf("migrate again: %+v, %v", run, err)
	}
}

// The build was interrupted (here cancelled by hand, as a server restart
// or a person would) and left an INVALID index, with no session: dropped.
func TestRecoverDropsAnInvalidIndex(t *testing.T) {
	tg, d, set := interruptedIndex(t)
	done := building(t, tg, set)
	if _, err := tg.db.Exec(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, aloneApp); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the build was not cancelled")
	}
	if s := indexState(t, tg); s != "invalid" {
		t.Fatalf("after the cancel the index is %s", s)
	}
	recoverAndCheck(t, d, tg, set, 1, `was interrupted and left the invalid index "users_gated"`, "dropped")
	if s := indexState(t, tg); s != "none" {
		t.Errorf("after recovery the index is %s", s)
	}
}

// The build finished, and lastgood stopped before it recorded the version:
// the index is valid, the schema is at the new version, which is recorded.
func TestRecoverRecordsAFinishedIndex(t *testing.T) {
	tg, d, set := interruptedIndex(t)
	done := building(t, tg, set)
	if _, err := tg.db.Exec(`SELECT setval('gate', 2)`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Version(ctx(t), tg.cfg); v != 1 {
		t.Fatalf("version %d before recovery", v)
	}
	recoverAndCheck(t, d, tg, set, 2, `had finished, and lastgood stopped before recording its version: the index "users_gated" is valid, so schema version 2 is recorded now`)
	if s := indexState(t, tg); s != "valid" {
		t.Errorf("after recovery the index is %s", s)
	}
}

// Nothing had started: the version stays, nothing is dropped.
func TestRecoverBeforeTheBuild(t *testing.T) {
	tg, d, set := interruptedIndex(t)
	recoverAndCheck(t, d, tg, set, 1, "had not started")
}

// A statement that runs by itself and builds no index (here DROP INDEX
// CONCURRENTLY) cannot be told done from not done: Recover says so, and
// the version stays.
func TestRecoverCannotTellOtherStatements(t *testing.T) {
	tg := newPostgres(t)
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{
		"001_init.up.sql": "CREATE TABLE users (id integer PRIMARY KEY, name text);\nCREATE INDEX users_name ON users (name);",
		"002_drop.up.sql": "DROP INDEX CONCURRENTLY users_name;",
	})
	released(t, d, tg, set)
	rec, err := d.Recover(ctx(t), tg.cfg, set.Between(1, 2), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 || len(rec.Notes) != 1 || !strings.Contains(rec.Notes[0], "migrations/002_drop.up.sql:1 (DROP INDEX CONCURRENTLY users_name, which runs by itself, outside a transaction) may have run, in part or in whole: lastgood cannot tell") {
		t.Errorf("recovery %+v", rec)
	}
}
