package server

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/strategy"
)

// writeMigrations writes migration files (name → SQL) into the app's
// migrations folder.
func (a *app) writeMigrations(t *testing.T, files map[string]string) {
	t.Helper()
	dir := filepath.Join(a.dir, "migrations")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// schemaRelease releases revision 1 of the sample app in database mode on
// a SQLite file, with a table notes(id, body), gives it a healthy history,
// then applies revision 2, which reads notes.text, with migration 002
// (up and down as given, acknowledged) and a canary.
func schemaRelease(t *testing.T, in *instance, a *app, up, down string) (dbFile string, c *clients, rollout int64) {
	t.Helper()
	dbFile = filepath.Join(t.TempDir(), "app.db")
	db := "database: {driver: sqlite, url: " + dbFile + ", migrations: ./migrations"
	a.writeMigrations(t, map[string]string{
		"001_notes.up.sql":   "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
		"001_notes.down.sql": "DROP TABLE notes;\n",
	})
	env := fmt.Sprintf("DATABASE_URL: %s, DB_TABLE: notes", dbFile)
	in.applyWait(t, a.robust(t, 1, "blueGreen: {}", env+", DB_COLUMNS: body", db+"}\n"))
	c = startPaced(t, a.listen, 100)
	time.Sleep(5 * time.Second) // the stable's history, healthy, before the rollout
	if byRev, failed := c.snapshot(); byRev[1] < 20 || len(failed) > 5 {
		t.Fatalf("revision 1 before the rollout: answers %v, failed %d: %q", byRev, len(failed), failed[:min(len(failed), 5)])
	}
	a.writeMigrations(t, map[string]string{"002_rename.up.sql": up, "002_rename.down.sql": down})
	allow := db + `, allow: [{migration: "002", reason: "testing the stable on a renamed column"}]}` + "\n"
	res, err := in.c.ApplyFile(context.Background(), a.robust(t, 1,
		"canary: {steps: [{setWeight: 10}, {analyze: {for: 10m}}]}", env+", DB_COLUMNS: text", allow+analysisOf(errorsCheck)))
	if err != nil {
		t.Fatal(err)
	}
	return dbFile, c, res.Rollout
}

// degradedAfter002 is what the verdict says of revision 1.
const degradedAfter002 = "revision 1 degraded after migration 002: the schema change is not backward-compatible"

// Issue 14 point 5, end to end: an acknowledged rename runs before the
// canary takes traffic; the stable revision (the sample app in database
// mode, a real SQLite file) keeps querying the old column and fails on the
// new schema. Its own error rate against its history shows it: the
// rollout is rolled back with a verdict naming the migration, the event
// and the incident record it, and the rollback policy reverts the rename
// (its down is a rename back, not destructive), after which the stable
// serves again.
func TestStableDegradedAfterMigrationIsRolledBackAndReverted(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "schema")
	dbFile, c, rollout := schemaRelease(t, in, a, "ALTER TABLE notes RENAME COLUMN body TO text;\n", "ALTER TABLE notes RENAME COLUMN text TO body;\n")
	st := in.waitEnd(t, a.name, rollout, 3*time.Minute, false)
	d := st.Rollout.Detail
	want := degradedAfter002
	if d.Phase != strategy.RolledBack || d.Trigger != controller.TriggerSchema || !strings.HasPrefix(d.Reason, want) {
		t.Fatalf("rollout ended %s (%s): %q; want rolled back by %s with %q", d.Phase, d.Trigger, d.Reason, controller.TriggerSchema, want)
	}
	if evs := in.eventsOf(t, a.name, "rollout.rolled-back"); len(evs) != 1 || !strings.Contains(evs[0].Message, want) {
		t.Fatalf("rolled-back events %+v: want one saying %q", evs, want)
	}
	if evs := in.eventsOf(t, a.name, "rollout.target-unhealthy"); len(evs) != 1 || !strings.Contains(evs[0].Message, want) {
		t.Fatalf("target-unhealthy events %+v: want one saying %q", evs, want)
	}
	waitFor(t, time.Minute, "the revert", func() bool {
		return len(in.eventsOf(t, a.name, "database.reverted"))+len(in.eventsOf(t, a.name, "database.revert-failed")) > 0
	})
	if evs := in.eventsOf(t, a.name, "database.reverted"); len(evs) != 1 {
		t.Fatalf("reverted events %+v (revert-failed: %+v)", evs, in.eventsOf(t, a.name, "database.revert-failed"))
	}

	// The schema is back where revision 1 needs it, and revision 1 serves.
	sdb, err := sql.Open("sqlite", dbFile+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var version int
	if err := sdb.QueryRow(`SELECT version FROM schema_migrations`).Scan(&version); err != nil || version != 1 {
		t.Fatalf("schema version %d, %v; want 1", version, err)
	}
	c.stop()
	waitFor(t, 30*time.Second, "revision 1 to serve again", func() bool {
		res, err := http.Get("http://" + a.listen + "/")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode == 200 && strings.Contains(string(b), "row: body=")
	})

	var inc *incident.Incident
	waitFor(t, 30*time.Second, "the incident with the policy's decision", func() bool {
		inc, err = in.c.Incident(context.Background(), incident.ID(a.name, st.Rollout.Number))
		return err == nil && inc.Database != nil && inc.Database.Policy != "" && inc.Database.After == 1
	})
	if !strings.HasPrefix(inc.Reason, want) || !strings.Contains(strings.Join(inc.Target, " "), want) {
		t.Fatalf("incident reason %q, target %q: want both to say %q", inc.Reason, inc.Target, want)
	}
}

// The same rename with a down file that is itself destructive: the policy
// could not give revision 1 its schema back, so rolling back would put all
// traffic on a revision that cannot use the schema. The rollout is held,
// with the same words; an abort then freezes the schema.
func TestStableDegradedAfterAnIrreversibleMigrationIsHeld(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "frozen")
	_, c, rollout := schemaRelease(t, in, a, "ALTER TABLE notes RENAME COLUMN body TO text;\n",
		"ALTER TABLE notes DROP COLUMN text;\nALTER TABLE notes ADD COLUMN body TEXT;\n")
	st := in.waitEnd(t, a.name, rollout, 3*time.Minute, true)
	d := st.Rollout.Detail
	if d.Phase != strategy.Paused || d.PauseReason != strategy.PauseUnhealthy || !strings.Contains(d.TargetTrouble, degradedAfter002) {
		t.Fatalf("rollout %s (%s, %s): %q; want held saying %q", d.Phase, d.PauseReason, d.Reason, d.TargetTrouble, degradedAfter002)
	}
	if evs := in.eventsOf(t, a.name, "rollout.target-unhealthy"); len(evs) != 1 || !strings.Contains(evs[0].Message, degradedAfter002) {
		t.Fatalf("target-unhealthy events %+v: want one saying %q", evs, degradedAfter002)
	}
	if _, err := in.c.Action(context.Background(), a.name, "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	c.stop()
	waitFor(t, time.Minute, "the policy's decision", func() bool { return len(in.eventsOf(t, a.name, "database.frozen")) == 1 })
	if evs := in.eventsOf(t, a.name, "database.reverting"); len(evs) != 0 {
		t.Fatalf("reverted with a destructive down file: %+v", evs)
	}
}
