package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/postgrestest"
)

// TestDatabaseMode runs the sample app against a real SQLite file and a
// real PostgreSQL: GET / writes and reads a row through the columns the
// release expects, and answers 500 once a column it needs is renamed.
func TestDatabaseMode(t *testing.T) {
	bin := build(t)
	pg := postgrestest.Start(t)
	cases := []struct {
		name, url string
	}{
		{name: "sqlite", url: filepath.Join(t.TempDir(), "app.db")},
		{name: "postgres", url: pg.CreateDatabase(t, "sampleapp")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			driver := "sqlite"
			if strings.HasPrefix(tc.url, "postgres") {
				driver = "pgx"
			}
			db, err := sql.Open(driver, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE notes (id INTEGER, body TEXT, author TEXT)`); err != nil {
				t.Fatal(err)
			}
			p := start(t, bin, "DATABASE_URL="+tc.url, "DB_TABLE=notes", "DB_COLUMNS=body, author")
			code, body := p.get(t, "/")
			if want := "hello from web revision 7 version v2\nrow: body=revision 7 author=revision 7\n"; code != 200 || body != want {
				t.Fatalf("GET / = %d %q, want 200 %q", code, body, want)
			}
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM notes WHERE body = 'revision 7'`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("rows written = %d, %v; want 1", n, err)
			}
			if _, err := db.Exec(`ALTER TABLE notes RENAME COLUMN author TO written_by`); err != nil {
				t.Fatal(err)
			}
			code, body = p.get(t, "/")
			if code != 500 || !strings.Contains(body, "database: insert into notes:") || !strings.Contains(body, "author") {
				t.Fatalf("GET / after the rename = %d %q, want 500 naming the insert and the column", code, body)
			}
			if code, _ := p.get(t, "/healthz"); code != 200 {
				t.Errorf("GET /healthz = %d: readiness does not depend on the database", code)
			}
		})
	}

	t.Run("bad names are usage errors", func(t *testing.T) {
		for _, env := range [][]string{
			{"DATABASE_URL=/tmp/x.db", "DB_TABLE=notes; DROP TABLE x"},
			{"DATABASE_URL=/tmp/x.db", "DB_TABLE=notes", "DB_COLUMNS=body,"},
			{"DATABASE_URL=mysql://h/db", "DB_TABLE=notes"},
			{"DB_TABLE=notes"},
		} {
			p := start(t, bin, env...)
			if code := p.exitCode(t); code != 2 {
				t.Errorf("%v: exit %d, want 2; stderr:\n%s", env, code, p.stderr)
			}
		}
	})
}
