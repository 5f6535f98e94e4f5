package database

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// connectTimeout bounds how long lastgood waits for a database to answer.
const connectTimeout = 10 * time.Second

type postgres struct{}

func (postgres) where(raw string) string { return "PostgreSQL at " + hostPort(raw) }

func (p postgres) open(ctx context.Context, raw string) (*sql.DB, error) {
	db, err := sql.Open("pgx", raw)
	if err != nil {
		return nil, unreachable(p.where(raw), errors.New("the URL is not one PostgreSQL takes"))
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, unreachable(p.where(raw), errors.New(pe.Message))
		}
		return nil, unreachable(p.where(raw), err)
	}
	db.SetMaxOpenConns(2)
	return db, nil
}

func (postgres) split(file, sql string) ([]stmt, error) { return splitPostgres(file, sql) }

// empty creates a temporary database on the same server (the role needs
// CREATEDB) from template0, and drops it again, forcing out any session.
func (p postgres) empty(ctx context.Context, live *sql.DB, raw string) (*sql.DB, func(), error) {
	var b [6]byte
	rand.Read(b[:])
	name := "lastgood_lint_" + hex.EncodeToString(b[:])
	if _, err := live.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0"); err != nil {
		return nil, nil, fmt.Errorf("lint needs a scratch database on the same server, and creating one failed (the role needs CREATEDB): %s", pgMessage(err))
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := live.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
			live.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name))
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		drop()
		return nil, nil, err
	}
	u.Path = "/" + name
	db, err := p.open(ctx, u.String())
	if err != nil {
		drop()
		return nil, nil, err
	}
	return db, func() { db.Close(); drop() }, nil
}

func (postgres) copy(context.Context, *sql.DB, string) (*sql.DB, func(), error) { return nil, nil, nil }

func (postgres) hasVersionTable(ctx context.Context, q querier) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&ok)
	return ok, err
}

// lock takes a transaction-scoped advisory lock, so two lastgood servers
// (or a retried apply) never migrate one database at once.
func (postgres) lock(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('lastgood schema_migrations'))`)
	return err
}

// userNamespaces selects the schemas that are the user's: not the system
// ones, not temporary ones.
const userNamespaces = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'`

// snapshot reads the catalog. Tables and columns are identified by OID and
// attribute number, which a rename keeps and a drop and re-create do not.
func (postgres) snapshot(ctx context.Context, q querier) (*Schema, error) {
	s := &Schema{}
	rows, err := q.QueryContext(ctx, `SELECT n.nspname FROM pg_namespace n WHERE `+userNamespaces+` ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			rows.Close()
			return nil, err
		}
		s.Namespaces = append(s.Namespaces, ns)
	}
	rows.Close()
	byOID := map[string]*Table{}
	rows, err = q.QueryContext(ctx, `SELECT c.oid::text, n.nspname, c.relname, c.relkind IN ('v', 'm')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND `+userNamespaces+`
		AND NOT (n.nspname = current_schema() AND c.relname = 'schema_migrations')
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		t := &Table{Rows: -1}
		if err := rows.Scan(&t.ID, &t.Namespace, &t.Name, &t.View); err != nil {
			rows.Close()
			return nil, err
		}
		s.Tables = append(s.Tables, t)
		byOID[t.ID] = t
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT a.attrelid::text, a.attnum::text, a.attname, format_type(a.atttypid, a.atttypmod),
		a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var rel string
		c := &Column{}
		if err := rows.Scan(&rel, &c.ID, &c.Name, &c.Type, &c.NotNull, &c.Default); err != nil {
			rows.Close()
			return nil, err
		}
		if t := byOID[rel]; t != nil {
			t.Columns = append(t.Columns, c)
		}
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT i.indrelid::text, i.indexrelid::text, c.relname, i.indisunique OR i.indisprimary
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid ORDER BY 1, 3`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var rel string
		ix := &Index{}
		if err := rows.Scan(&rel, &ix.ID, &ix.Name, &ix.Unique); err != nil {
			rows.Close()
			return nil, err
		}
		if t := byOID[rel]; t != nil {
			t.Indexes = append(t.Indexes, ix)
		}
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT conrelid::text, oid::text, conname,
		CASE contype WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key' ELSE 'exclusion' END
		FROM pg_constraint WHERE contype IN ('c', 'f', 'x') AND conrelid <> 0 ORDER BY 1, 3`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var rel string
		c := &Constraint{}
		if err := rows.Scan(&rel, &c.ID, &c.Name, &c.Kind); err != nil {
			rows.Close()
			return nil, err
		}
		if t := byOID[rel]; t != nil {
			t.Constraints = append(t.Constraints, c)
		}
	}
	rows.Close()
	return s, rows.Err()
}

// pgMessage is a PostgreSQL error as the server said it, with its detail
// and hint.
func pgMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(pe.Message)
	if pe.Detail != "" {
		b.WriteString(" (" + pe.Detail + ")")
	}
	if pe.Hint != "" {
		b.WriteString("; hint: " + pe.Hint)
	}
	fmt.Fprintf(&b, " [SQLSTATE %s]", pe.Code)
	return b.String()
}
