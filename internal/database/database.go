// Package database runs an app's schema migrations against its database,
// PostgreSQL (through pgx) or SQLite: it lints a release's migrations on a
// scratch copy — a temporary database on the same server, or a copy of
// the SQLite file — classifying each statement by the difference it makes
// to the catalog (plus what PostgreSQL's own parser says of it), runs
// them in one transaction, and reverts them with their down files. The
// version is kept in golang-migrate's schema_migrations table, never
// dirty. The policy that decides what may run is internal/migrate's.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
)

// Config is what Databases reads.
type Config struct {
	// Read returns the content of a stored artifact (a migration file).
	Read func(digest string) ([]byte, error)
	// Getenv expands database.url; default os.LookupEnv (lastgood's own
	// environment).
	Getenv func(string) (string, bool)
}

// Databases lints, runs and reverts the migrations of any app's database.
// Every call connects afresh: nothing is kept between calls.
type Databases struct {
	cfg Config
}

// New returns a Databases.
func New(cfg Config) *Databases {
	if cfg.Getenv == nil {
		cfg.Getenv = os.LookupEnv
	}
	return &Databases{cfg: cfg}
}

// StatementError is a statement that the database refused, located in its
// migration file.
type StatementError struct {
	File      string
	Line      int
	Statement string
	Message   string
}

func (e *StatementError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, oneLine(e.Statement), e.Message)
}

// Field is the manifest field the problem is about.
func (e *StatementError) Field() string { return "database.migrations" }

// URLError is a problem with the database the manifest names: it cannot be
// reached, a variable of its URL is not set, or it is dirty.
type URLError struct{ Err error }

func (e *URLError) Error() string { return e.Err.Error() }
func (e *URLError) Unwrap() error { return e.Err }

// Field is the manifest field the problem is about.
func (e *URLError) Field() string { return "database.url" }

// ErrDirty marks a database that golang-migrate left dirty: a migration it
// ran failed half way, and only a person can tell what state it is in.
var ErrDirty = errors.New("database is dirty")

// ErrMoved marks a database whose version changed between lint and run.
var ErrMoved = errors.New("database version moved")

func (d *Databases) connect(ctx context.Context, cfg *manifest.Database) (driver, *sql.DB, string, error) {
	drv, url, err := d.resolve(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	db, err := drv.open(ctx, url)
	if err != nil {
		return nil, nil, "", &URLError{err}
	}
	return drv, db, url, nil
}

// readOnly is a driver that can open the live database without changing
// it, where opening would create it (a SQLite file that does not exist
// yet reads as an empty scratch database): for lint.
type readOnly interface {
	openToRead(ctx context.Context, url string) (*sql.DB, func(), error)
}

// connectToRead is connect for lint, which only reads the live database:
// a refused apply leaves nothing behind. closeIt closes the database (and
// removes a scratch one).
func (d *Databases) connectToRead(ctx context.Context, cfg *manifest.Database) (drv driver, db *sql.DB, url string, closeIt func(), err error) {
	drv, url, err = d.resolve(cfg)
	if err != nil {
		return nil, nil, "", nil, err
	}
	ro, ok := drv.(readOnly)
	if !ok {
		if db, err = drv.open(ctx, url); err != nil {
			return nil, nil, "", nil, &URLError{err}
		}
		return drv, db, url, func() { db.Close() }, nil
	}
	db, closeIt, err = ro.openToRead(ctx, url)
	if err != nil {
		return nil, nil, "", nil, &URLError{err}
	}
	return drv, db, url, closeIt, nil
}

// resolve is the driver of cfg and its URL with ${VAR} expanded.
func (d *Databases) resolve(cfg *manifest.Database) (driver, string, error) {
	drv, err := driverFor(cfg.Driver)
	if err != nil {
		return nil, "", err
	}
	url, err := cfg.ExpandURL(d.cfg.Getenv)
	if err != nil {
		return nil, "", &URLError{err}
	}
	return drv, url, nil
}

// Where names an app's database for people: the host and port, or the
// file, never a password.
func (d *Databases) Where(cfg *manifest.Database) string {
	drv, err := driverFor(cfg.Driver)
	if err != nil {
		return cfg.Driver
	}
	url, err := cfg.ExpandURL(d.cfg.Getenv)
	if err != nil {
		return drv.where("")
	}
	return drv.where(url)
}

// Version reads the live database's schema version.
func (d *Databases) Version(ctx context.Context, cfg *manifest.Database) (uint64, error) {
	drv, db, url, err := d.connect(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return version(ctx, drv, db, drv.where(url))
}

// version reads schema_migrations: 0 when it does not exist or is empty.
func version(ctx context.Context, drv driver, q querier, where string) (uint64, error) {
	ok, err := drv.hasVersionTable(ctx, q)
	if err != nil || !ok {
		return 0, err
	}
	var v int64
	var dirty bool
	err = q.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1`).Scan(&v, &dirty)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read the schema version of %s: %w", where, err)
	case dirty:
		return 0, fmt.Errorf("%w: %s is dirty at version %d (a migration run by another tool failed half way): "+
			"make the schema match a version by hand, then set it with `migrate force`", ErrDirty, where, v)
	}
	return uint64(v), nil
}

// script reads and splits one migration file.
func (d *Databases) script(drv driver, s migrate.Script) ([]stmt, error) {
	b, err := d.cfg.Read(s.Digest)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Path, err)
	}
	stmts, err := drv.split(s.Path, string(b))
	if err != nil {
		return nil, err
	}
	alone := slices.IndexFunc(stmts, func(s stmt) bool { return s.Alone })
	if alone >= 0 && len(stmts) > 1 {
		a := stmts[alone]
		return nil, &StatementError{File: s.Path, Line: a.Line, Statement: a.SQL,
			Message: "cannot run inside a transaction, so it must be the only statement of its migration file (lastgood runs it by itself)"}
	}
	return stmts, nil
}

// Lint checks the migrations that would bring the live database from its
// version to the set's, on scratch copies: every migration up to the live
// version is replayed on an empty database on the same server (or an
// empty SQLite file) to learn which tables each changed; the new ones run
// statement by statement on a copy of the live schema (PostgreSQL: the
// replayed one; SQLite: a copy of the file with its data), each
// classified by how the catalog changed; then their down files run in
// reverse. The live database is only read.
func (d *Databases) Lint(ctx context.Context, cfg *manifest.Database, set migrate.Set) (migrate.Lint, error) {
	drv, live, url, closeLive, err := d.connectToRead(ctx, cfg)
	if err != nil {
		return migrate.Lint{}, err
	}
	defer closeLive()
	where := drv.where(url)
	from, err := version(ctx, drv, live, where)
	if errors.Is(err, ErrDirty) {
		return migrate.Lint{}, &URLError{err}
	}
	if err != nil {
		return migrate.Lint{}, err
	}
	lint := migrate.Lint{From: from, To: set.Version(), Touched: map[uint64][]string{}}
	// every file is parsed, also those that will not run: SQL that does
	// not parse is bad input wherever it is
	ups := map[uint64][]stmt{}
	for _, m := range set.Migrations {
		if ups[m.Version], err = d.script(drv, m.Up); err != nil {
			return lint, err
		}
	}
	if from > lint.To {
		lint.To = from
		lint.Warnings = append(lint.Warnings, fmt.Sprintf("%s is at schema version %d, ahead of this revision's %d: the revision runs on the newer schema", where, from, set.Version()))
		return lint, nil
	}
	if from == lint.To {
		return lint, nil
	}
	scratch, drop, err := drv.empty(ctx, live, url)
	if err != nil {
		return lint, err
	}
	defer drop()
	conn, err := scratch.Conn(ctx)
	if err != nil {
		return lint, err
	}
	defer conn.Close()
	prev, err := drv.snapshot(ctx, conn)
	if err != nil {
		return lint, err
	}
	for _, m := range set.Between(0, from) {
		for _, s := range ups[m.Version] {
			if _, err := conn.ExecContext(ctx, s.SQL); err != nil {
				return lint, &StatementError{File: m.Up.Path, Line: s.Line, Statement: s.SQL,
					Message: fmt.Sprintf("fails when replayed on a scratch database (migration %d is already applied to %s): %s", m.Version, where, message(err))}
			}
		}
		cur, err := drv.snapshot(ctx, conn)
		if err != nil {
			return lint, err
		}
		lint.Touched[m.Version] = touched(diff(prev, cur, facts{}, map[string]bool{}))
		prev = cur
	}
	if cp, dropCopy, err := drv.copy(ctx, live, url); err != nil {
		return lint, err
	} else if cp != nil {
		defer dropCopy()
		conn.Close()
		if conn, err = cp.Conn(ctx); err != nil {
			return lint, err
		}
		defer conn.Close()
		if prev, err = drv.snapshot(ctx, conn); err != nil {
			return lint, err
		}
	}
	created := map[string]bool{}
	for _, m := range set.Between(from, lint.To) {
		var tables []string
		for _, s := range ups[m.Version] {
			if _, err := conn.ExecContext(ctx, s.SQL); err != nil {
				return lint, &StatementError{File: m.Up.Path, Line: s.Line, Statement: s.SQL,
					Message: "fails on a scratch copy of the schema: " + message(err)}
			}
			cur, err := drv.snapshot(ctx, conn)
			if err != nil {
				return lint, err
			}
			f := finding(m, s, diff(prev, cur, s.facts, created))
			lint.Findings = append(lint.Findings, f)
			if s.Alone {
				lint.Alone = append(lint.Alone, f)
			}
			tables = append(tables, f.Tables...)
			prev = cur
		}
		lint.Touched[m.Version] = uniq(tables)
	}
	lint.Downs, lint.DownErrors = map[uint64]migrate.Class{}, map[uint64]string{}
	pending := set.Between(from, lint.To)
	for i := len(pending) - 1; i >= 0; i-- {
		m := pending[i]
		if m.Down == nil {
			continue
		}
		class, err := d.lintDown(ctx, drv, conn, m, &prev)
		if err != nil {
			lint.DownErrors[m.Version] = err.Error()
			break // the downs below it would run on a schema they were not written for
		}
		lint.Downs[m.Version] = class
	}
	return lint, nil
}

func (d *Databases) lintDown(ctx context.Context, drv driver, conn *sql.Conn, m migrate.Migration, prev **Schema) (migrate.Class, error) {
	stmts, err := d.script(drv, *m.Down)
	if err != nil {
		return "", err
	}
	class := migrate.Compatible
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s.SQL); err != nil {
			return "", &StatementError{File: m.Down.Path, Line: s.Line, Statement: s.SQL, Message: "fails on the scratch copy after the up migrations: " + message(err)}
		}
		cur, err := drv.snapshot(ctx, conn)
		if err != nil {
			return "", err
		}
		for _, c := range diff(*prev, cur, s.facts, map[string]bool{}) {
			class = migrate.Worse(class, c.class)
		}
		*prev = cur
	}
	return class, nil
}

// finding turns a statement's changes into a Finding: the worst class,
// what every change did, why the worst ones break the running code.
func finding(m migrate.Migration, s stmt, changes []change) migrate.Finding {
	f := migrate.Finding{Version: m.Version, File: m.Up.Path, Line: s.Line, Statement: s.SQL, Class: migrate.Compatible}
	var what, why []string
	for _, c := range changes {
		f.Class = migrate.Worse(f.Class, c.class)
		what = append(what, c.what)
		if c.table != "" {
			f.Tables = append(f.Tables, c.table)
		}
		if c.drop {
			f.Drops = append(f.Drops, c.table)
		}
	}
	for _, c := range changes {
		if c.class == f.Class && c.why != "" {
			why = append(why, c.why)
		}
	}
	f.Change, f.Why = strings.Join(uniq(what), "; "), strings.Join(uniq(why), "; ")
	if f.Change == "" {
		f.Change = "changes no table, column or index lint can see"
	}
	f.Tables, f.Drops = uniq(f.Tables), uniq(f.Drops)
	return f
}

func touched(changes []change) []string {
	var out []string
	for _, c := range changes {
		if c.table != "" {
			out = append(out, c.table)
		}
	}
	return uniq(out)
}

func uniq(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// message is a database error as the database said it.
func message(err error) string { return pgMessage(err) }
