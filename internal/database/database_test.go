package database

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
	"github.com/lastgood/lastgood/internal/postgrestest"
)

// pg is the one PostgreSQL server of this package's tests.
var pg *postgrestest.Server

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		runWriter(path)
	}
	var err error
	if pg, err = postgrestest.StartServer(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// blobs stands for the artifact store.
type blobs map[string][]byte

func (b blobs) read(d string) ([]byte, error) {
	if c, ok := b[d]; ok {
		return c, nil
	}
	return nil, os.ErrNotExist
}

// folder makes a Set of migration files (name → SQL), storing them in b.
func (b blobs) folder(t *testing.T, files map[string]string) migrate.Set {
	t.Helper()
	digests := map[string]string{}
	for name, sql := range files {
		sum := sha256.Sum256([]byte(sql))
		d := "sha256:" + hex.EncodeToString(sum[:])
		b[d] = []byte(sql)
		digests[migrate.FilePath("migrations", name)] = d
	}
	set, problems := migrate.Layout("migrations", digests)
	if len(problems) > 0 {
		t.Fatalf("layout: %v", problems)
	}
	return set
}

var dbCount atomic.Int64

// target is one database of a driver for a test.
type target struct {
	name string
	cfg  *manifest.Database
	db   *sql.DB // a connection of the test's own
}

func newPostgres(t *testing.T) target {
	name := fmt.Sprintf("t%d", dbCount.Add(1))
	url := pg.CreateDatabase(t, name)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return target{name: "postgres", cfg: &manifest.Database{Driver: manifest.DriverPostgres, URL: url}, db: db}
}

func newSQLite(t *testing.T) target {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return target{name: "sqlite", cfg: &manifest.Database{Driver: manifest.DriverSQLite, URL: path}, db: db}
}

func both(t *testing.T, f func(t *testing.T, tg target)) {
	t.Run("postgres", func(t *testing.T) { f(t, newPostgres(t)) })
	t.Run("sqlite", func(t *testing.T) { f(t, newSQLite(t)) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

const initSQL = `CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE tags (id integer PRIMARY KEY, label text);
-- a row, so that SQLite's copy has data
INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');`

// released runs migration 001 on the live database, as a first release
// would.
func released(t *testing.T, d *Databases, tg target, set migrate.Set) {
	t.Helper()
	if _, err := d.Migrate(ctx(t), tg.cfg, set, 0, 1); err != nil {
		t.Fatalf("migrate 001: %v", err)
	}
}

func worstFinding(t *testing.T, lint migrate.Lint, v uint64) migrate.Finding {
	t.Helper()
	var worst *migrate.Finding
	for i, f := range lint.Findings {
		if f.Version == v && (worst == nil || migrate.Worse(worst.Class, f.Class) != worst.Class) {
			worst = &lint.Findings[i]
		}
	}
	if worst == nil {
		t.Fatalf("no finding for migration %d in %+v", v, lint.Findings)
	}
	return *worst
}

func TestLintClassifies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		up     string
		class  migrate.Class
		change string // part of Finding.Change
		only   string // a driver the case is for, "" for both
	}{
		{"nullable column", "ALTER TABLE users ADD COLUMN email text;", migrate.Compatible, "adds nullable column users.email", ""},
		{"column with default", "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';", migrate.Compatible, "with a default", ""},
		{"new table", "CREATE TABLE orders (id integer PRIMARY KEY, note text);", migrate.Compatible, "creates table orders", ""},
		{"table renamed in its release", "CREATE TABLE tmp (id integer);\nALTER TABLE tmp RENAME TO orders;", migrate.Compatible, "created in this release", ""},
		{"rename column", "ALTER TABLE users RENAME COLUMN name TO full_name;", migrate.Incompatible, "renames column users.name to full_name", ""},
		{"rename table", "ALTER TABLE users RENAME TO people;", migrate.Incompatible, "renames users to people", ""},
		{"drop column", "ALTER TABLE users DROP COLUMN name;", migrate.Destructive, "drops column users.name", ""},
		{"drop table", "DROP TABLE users;", migrate.Destructive, "drops table users", ""},
		{"unique index", "CREATE UNIQUE INDEX users_name ON users (name);", migrate.Incompatible, "adds unique index users_name", ""},
		{"delete rows", "DELETE FROM users WHERE id = 2;", migrate.Destructive, "users", ""},
		{"not null without default", "ALTER TABLE tags ADD COLUMN age integer NOT NULL;", migrate.Incompatible, "NOT NULL without a default", "postgres"},
		{"type change", "ALTER TABLE users ALTER COLUMN name TYPE varchar(10);", migrate.Incompatible, "changes the type of users.name from text to character varying(10)", "postgres"},
		{"set not null", "ALTER TABLE tags ALTER COLUMN label SET NOT NULL;", migrate.Incompatible, "makes tags.label NOT NULL", "postgres"},
		{"plain index", "CREATE INDEX users_by_name ON users (name);", migrate.Incompatible, "without CONCURRENTLY", "postgres"},
		{"concurrent index", "CREATE INDEX CONCURRENTLY users_by_name ON users (name);", migrate.Compatible, "adds index users_by_name", "postgres"},
		{"check constraint", "ALTER TABLE users ADD CONSTRAINT short CHECK (length(name) < 10);", migrate.Incompatible, "adds check constraint short", "postgres"},
		{"drop schema", "CREATE SCHEMA extra;\n", migrate.Compatible, "changes no table", "postgres"},
		{"index in sqlite", "CREATE INDEX users_by_name ON users (name);", migrate.Compatible, "adds index users_by_name", "sqlite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both(t, func(t *testing.T, tg target) {
				if tc.only != "" && tc.only != tg.name {
					return
				}
				b := blobs{}
				d := New(Config{Read: b.read})
				set := b.folder(t, map[string]string{"001_init.up.sql": initSQL, "002_change.up.sql": tc.up})
				released(t, d, tg, set)
				lint, err := d.Lint(ctx(t), tg.cfg, set)
				if err != nil {
					t.Fatalf("lint: %v", err)
				}
				if lint.From != 1 || lint.To != 2 {
					t.Fatalf("lint from %d to %d", lint.From, lint.To)
				}
				f := worstFinding(t, lint, 2)
				var all []string
				for _, g := range lint.Findings {
					all = append(all, g.Change+" "+strings.Join(g.Tables, ","))
				}
				if f.Class != tc.class || !strings.Contains(strings.Join(all, "; "), tc.change) {
					t.Errorf("finding %s: %q; want %s: %q", f.Class, all, tc.class, tc.change)
				}
				if f.Class != migrate.Compatible && f.Why == "" {
					t.Errorf("no why for %s", f.Class)
				}
				if f.File != "migrations/002_change.up.sql" || f.Line < 1 {
					t.Errorf("located at %s:%d", f.File, f.Line)
				}
				// lint never changes the live database
				var n int
				if err := tg.db.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil || n != 2 {
					t.Errorf("live users: %d rows, %v", n, err)
				}
				if v, err := d.Version(ctx(t), tg.cfg); err != nil || v != 1 {
					t.Errorf("live version %d, %v", v, err)
				}
			})
		})
	}
}

// A SQLite file that does not exist yet is linted as an empty database,
// and lint leaves no file behind: a refused apply changes nothing.
func TestLintDoesNotCreateAMissingSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	cfg := &manifest.Database{Driver: manifest.DriverSQLite, URL: path}
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{
		"001_init.up.sql":   initSQL,
		"002_rename.up.sql": "ALTER TABLE users RENAME COLUMN name TO full_name;",
	})
	lint, err := d.Lint(ctx(t), cfg, set)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	if lint.From != 0 || lint.To != 2 {
		t.Fatalf("lint from %d to %d, want 0 to 2", lint.From, lint.To)
	}
	// Both are new in this release, so the rename touches a table no
	// running revision knows: compatible, as on any empty database.
	if f := worstFinding(t, lint, 2); f.Class != migrate.Compatible || !strings.Contains(f.Change, "created in this release") {
		t.Fatalf("the rename of a table created in this release: %s %q", f.Class, f.Change)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lint left %s behind: %v", path, err)
	}
	// A folder that does not exist is still an error that names it.
	cfg.URL = filepath.Join(t.TempDir(), "no", "such", "app.db")
	if _, err := d.Lint(ctx(t), cfg, set); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("lint in a missing folder: %v", err)
	}
}

func TestLintDropSchemaIsDestructive(t *testing.T) {
	tg := newPostgres(t)
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{"001_init.up.sql": "CREATE SCHEMA extra; CREATE TABLE extra.t (id int);", "002_drop.up.sql": "DROP SCHEMA extra CASCADE;"})
	released(t, d, tg, set)
	lint, err := d.Lint(ctx(t), tg.cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	if f := worstFinding(t, lint, 2); f.Class != migrate.Destructive || !strings.Contains(f.Change, "drops schema extra") || !strings.Contains(f.Change, "drops table extra.t") {
		t.Errorf("finding %+v", f)
	}
}

func TestLintTouchedAndDowns(t *testing.T) {
	both(t, func(t *testing.T, tg target) {
		b := blobs{}
		d := New(Config{Read: b.read})
		set := b.folder(t, map[string]string{
			"001_init.up.sql":     initSQL,
			"002_orders.up.sql":   "CREATE TABLE orders (id integer);",
			"003_rename.up.sql":   "ALTER TABLE users RENAME COLUMN name TO full_name;",
			"003_rename.down.sql": "ALTER TABLE users RENAME COLUMN full_name TO name;",
			"004_email.up.sql":    "ALTER TABLE users ADD COLUMN email text;",
			"004_email.down.sql":  "ALTER TABLE users DROP COLUMN email;",
			"002_orders.down.sql": "DROP TABLE orders;",
			"001_init.down.sql":   "DROP TABLE users;",
		})
		if _, err := d.Migrate(ctx(t), tg.cfg, set, 0, 2); err != nil {
			t.Fatal(err)
		}
		lint, err := d.Lint(ctx(t), tg.cfg, set)
		if err != nil {
			t.Fatal(err)
		}
		if got := lint.Touched; strings.Join(got[1], ",") != "tags,users" || strings.Join(got[2], ",") != "orders" || strings.Join(got[3], ",") != "users" {
			t.Errorf("touched %v", got)
		}
		if lint.Downs[3] != migrate.Incompatible || lint.Downs[4] != migrate.Destructive {
			t.Errorf("downs %v, errors %v", lint.Downs, lint.DownErrors)
		}
	})
}

func TestLintBadSQL(t *testing.T) {
	for _, tc := range []struct {
		driver string
		up     string
		line   int
		want   string
	}{
		{"postgres", "ALTER TABLE users ADD COLUMN a text;\n\nALTER TABEL users ADD COLUMN b text;", 3, "does not parse"},
		{"postgres", "BEGIN;\nALTER TABLE users ADD COLUMN a text;\nCOMMIT;", 1, "leave BEGIN, COMMIT and ROLLBACK out"},
		{"postgres", "ALTER TABLE users ADD COLUMN a text;\nCREATE INDEX CONCURRENTLY i ON users (a);", 2, "only statement of its migration file"},
		{"postgres", "-- a comment\nALTER TABLE nobody ADD COLUMN a text;", 2, `relation "nobody" does not exist`},
		{"sqlite", "ALTER TABLE users ADD COLUMN a text;\n\nALTER TABEL users ADD COLUMN b text;", 3, "syntax error"},
		{"sqlite", "/* why */ ALTER TABLE nobody ADD COLUMN a text;", 1, "no such table"},
		{"sqlite", "ALTER TABLE users ADD COLUMN a text", 1, ""},
		{"sqlite", "ALTER TABLE users ADD COLUMN a text;\nCREATE TRIGGER tr AFTER INSERT ON users BEGIN UPDATE users SET a = 'x'; END;\nALTER TABLE users ADD COLUMN b text;", 0, ""},
	} {
		t.Run(tc.driver+" "+strings.Fields(tc.want + " ok")[0], func(t *testing.T) {
			var tg target
			if tc.driver == "postgres" {
				tg = newPostgres(t)
			} else {
				tg = newSQLite(t)
			}
			b := blobs{}
			d := New(Config{Read: b.read})
			set := b.folder(t, map[string]string{"001_init.up.sql": initSQL, "002_bad.up.sql": tc.up})
			released(t, d, tg, set)
			lint, err := d.Lint(ctx(t), tg.cfg, set)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("lint: %v", err)
				}
				if len(lint.Findings) == 0 {
					t.Fatal("no findings")
				}
				return
			}
			var se *SyntaxError
			var ste *StatementError
			switch {
			case errors.As(err, &se):
				if se.File != "migrations/002_bad.up.sql" || se.Line != tc.line || !strings.Contains(se.Message, tc.want) {
					t.Errorf("syntax error %s:%d %s; want line %d with %q", se.File, se.Line, se.Message, tc.line, tc.want)
				}
			case errors.As(err, &ste):
				if ste.File != "migrations/002_bad.up.sql" || ste.Line != tc.line || !strings.Contains(ste.Message, tc.want) || ste.Statement == "" {
					t.Errorf("statement error %s:%d %q %s; want line %d with %q", ste.File, ste.Line, ste.Statement, ste.Message, tc.line, tc.want)
				}
			default:
				t.Fatalf("lint: %v (%T), want a located error", err, err)
			}
		})
	}
}

func TestMigrateAndFailHalfWay(t *testing.T) {
	both(t, func(t *testing.T, tg target) {
		b := blobs{}
		d := New(Config{Read: b.read})
		set := b.folder(t, map[string]string{
			"001_init.up.sql":   initSQL,
			"002_email.up.sql":  "ALTER TABLE users ADD COLUMN email text;\nCREATE TABLE orders (id integer);",
			"003_broken.up.sql": "ALTER TABLE users ADD COLUMN plan text;\nINSERT INTO nowhere VALUES (1);",
		})
		released(t, d, tg, set)
		run, err := d.Migrate(ctx(t), tg.cfg, set, 1, 3)
		var re *RunError
		if !errors.As(err, &re) {
			t.Fatalf("migrate: %v, want a RunError", err)
		}
		if !strings.Contains(err.Error(), "migrations/003_broken.up.sql:2: INSERT INTO nowhere VALUES (1)") || !strings.Contains(err.Error(), "schema version 1, as before") {
			t.Errorf("error: %v", err)
		}
		if run.Before != 1 || run.After != 1 || len(run.Migrations) != 2 {
			t.Fatalf("run %+v", run)
		}
		outcomes := func(r migrate.Ran) string {
			var s []string
			for _, st := range r.Statements {
				s = append(s, st.Outcome)
			}
			return strings.Join(s, ",")
		}
		if got := outcomes(run.Migrations[0]) + "|" + outcomes(run.Migrations[1]); got != "rolled back,rolled back|rolled back,failed" {
			t.Errorf("outcomes %s", got)
		}
		// nothing is left behind
		if v, err := d.Version(ctx(t), tg.cfg); err != nil || v != 1 {
			t.Errorf("version %d, %v", v, err)
		}
		if _, err := tg.db.Exec(`SELECT email FROM users`); err == nil {
			t.Error("users.email exists after the failed run")
		}
		if _, err := tg.db.Exec(`SELECT * FROM orders`); err == nil {
			t.Error("orders exists after the failed run")
		}
		// the good part alone goes through
		run, err = d.Migrate(ctx(t), tg.cfg, set, 1, 2)
		if err != nil || run.After != 2 || outcomes(run.Migrations[0]) != "applied,applied" {
			t.Fatalf("migrate to 2: %+v, %v", run, err)
		}
		if _, err := tg.db.Exec(`SELECT email FROM users`); err != nil {
			t.Errorf("users.email after migrating: %v", err)
		}
		var dirty bool
		if err := tg.db.QueryRow(`SELECT dirty FROM schema_migrations`).Scan(&dirty); err != nil || dirty {
			t.Errorf("dirty %v, %v", dirty, err)
		}
		// a run that starts from a version the database has left is refused
		if _, err := d.Migrate(ctx(t), tg.cfg, set, 1, 2); !errors.Is(err, ErrMoved) {
			t.Errorf("migrate from a stale version: %v", err)
		}
	})
}

func TestRevert(t *testing.T) {
	both(t, func(t *testing.T, tg target) {
		b := blobs{}
		d := New(Config{Read: b.read})
		set := b.folder(t, map[string]string{
			"001_init.up.sql":     initSQL,
			"002_rename.up.sql":   "ALTER TABLE users RENAME COLUMN name TO full_name;",
			"002_rename.down.sql": "ALTER TABLE users RENAME COLUMN full_name TO name;",
		})
		if _, err := d.Migrate(ctx(t), tg.cfg, set, 0, 2); err != nil {
			t.Fatal(err)
		}
		run, err := d.Revert(ctx(t), tg.cfg, []migrate.Migration{set.Migrations[1]}, 2, 1)
		if err != nil || run.Before != 2 || run.After != 1 || run.Direction != "down" {
			t.Fatalf("revert: %+v, %v", run, err)
		}
		var name string
		if err := tg.db.QueryRow(`SELECT name FROM users WHERE id = 1`).Scan(&name); err != nil || name != "ada" {
			t.Errorf("users.name after the revert: %q, %v", name, err)
		}
		if v, _ := d.Version(ctx(t), tg.cfg); v != 1 {
			t.Errorf("version %d", v)
		}
	})
}

func TestConcurrentIndexRunsAlone(t *testing.T) {
	tg := newPostgres(t)
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{
		"001_init.up.sql":  initSQL,
		"002_dup.up.sql":   "INSERT INTO users VALUES (3, 'ada');",
		"003_index.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY users_name ON users (name);",
		"004_ok.up.sql":    "CREATE INDEX CONCURRENTLY users_by_name ON users (name);",
	})
	released(t, d, tg, set)
	run, err := d.Migrate(ctx(t), tg.cfg, set, 1, 3)
	if err == nil || !strings.Contains(err.Error(), "run by itself, outside a transaction") || !strings.Contains(err.Error(), "invalid index it left was dropped") {
		t.Fatalf("migrate: %v", err)
	}
	if run.After != 2 || !run.Migrations[1].Statements[0].Alone {
		t.Errorf("run %+v", run)
	}
	var n int
	if err := tg.db.QueryRow(`SELECT count(*) FROM pg_class WHERE relname = 'users_name'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("users_name left behind: %d, %v", n, err)
	}
	if _, err := tg.db.Exec(`DELETE FROM users WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if run, err := d.Migrate(ctx(t), tg.cfg, set, 2, 4); err != nil || run.After != 4 {
		t.Fatalf("migrate 2 → 4: %+v, %v", run, err)
	}
}

func TestUnreachable(t *testing.T) {
	d := New(Config{Read: blobs{}.read, Getenv: func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return "postgres://app:hunter2-secret@127.0.0.1:1/app", true
		}
		return "", false
	}})
	cfg := &manifest.Database{Driver: manifest.DriverPostgres, URL: "${DATABASE_URL}"}
	_, err := d.Lint(ctx(t), cfg, migrate.Set{})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("lint of an unreachable database: %v", err)
	}
	// a wrong password is named as such, and not shown
	url := strings.Replace(pg.CreateDatabase(t, "wrongpw"), postgrestest.Password, "not-the-password", 1)
	_, err = d.Version(ctx(t), &manifest.Database{Driver: manifest.DriverPostgres, URL: url})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("wrong password: %v", err)
	}
	// an unset variable is named
	_, err = New(Config{Read: blobs{}.read, Getenv: func(string) (string, bool) { return "", false }}).Version(ctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Errorf("unset variable: %v", err)
	}
	// SQLite: a folder that is not there
	_, err = d.Version(ctx(t), &manifest.Database{Driver: manifest.DriverSQLite, URL: "/nonexistent/dir/app.db"})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "/nonexistent/dir") {
		t.Errorf("sqlite in a missing folder: %v", err)
	}
}
