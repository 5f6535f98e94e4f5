package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// store is the database mode: GET / writes a row to a table and reads it
// back through the columns this release expects, so a schema the release
// cannot use answers 500.
type store struct {
	db      *sql.DB
	table   string
	columns []string
	// mark is the placeholder style: "$" for PostgreSQL, "?" for SQLite.
	mark string
}

// identifier is what DB_TABLE and DB_COLUMNS accept: a plain SQL name, so
// that it can be written into a statement as it is.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// openStore reads DATABASE_URL, DB_TABLE and DB_COLUMNS; it returns nil
// unless DB_TABLE is set (a release whose migrations lastgood runs has
// DATABASE_URL without asking the app to query). It does not connect: the
// first request does, and a database that cannot be reached answers 500.
func openStore(getenv func(string) string) (*store, error) {
	s := &store{table: getenv("DB_TABLE"), mark: "?"}
	if s.table == "" {
		return nil, nil
	}
	url := getenv("DATABASE_URL")
	if url == "" {
		return nil, errors.New("DB_TABLE is set but DATABASE_URL is not: want postgres://… or the path of a SQLite file")
	}
	if !identifier.MatchString(s.table) {
		return nil, fmt.Errorf("DB_TABLE %q: want a plain SQL name (letters, digits, _)", s.table)
	}
	cols := getenv("DB_COLUMNS")
	if cols == "" {
		cols = "message"
	}
	for _, c := range strings.Split(cols, ",") {
		c = strings.TrimSpace(c)
		if !identifier.MatchString(c) {
			return nil, fmt.Errorf("DB_COLUMNS %q: want plain SQL names (letters, digits, _) separated by commas", cols)
		}
		s.columns = append(s.columns, c)
	}
	driver, dsn := "sqlite", url+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		driver, dsn, s.mark = "pgx", url, "$"
	} else if strings.Contains(url, "://") {
		return nil, errors.New("DATABASE_URL: want postgres://… or the path of a SQLite file")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %v", err)
	}
	db.SetMaxOpenConns(4)
	s.db = db
	return s, nil
}

// roundTrip inserts a row holding value in every column, then reads the
// columns of one row back.
func (s *store) roundTrip(ctx context.Context, value string) ([]string, error) {
	marks := make([]string, len(s.columns))
	args := make([]any, len(s.columns))
	for i := range s.columns {
		marks[i] = s.mark
		if s.mark == "$" {
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		args[i] = value
	}
	cols := strings.Join(s.columns, ", ")
	insert := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", s.table, cols, strings.Join(marks, ", "))
	if _, err := s.db.ExecContext(ctx, insert, args...); err != nil {
		return nil, fmt.Errorf("insert into %s: %w", s.table, err)
	}
	out := make([]string, len(s.columns))
	dest := make([]any, len(s.columns))
	for i := range out {
		dest[i] = &sql.NullString{}
	}
	query := fmt.Sprintf("SELECT %s FROM %s LIMIT 1", cols, s.table)
	if err := s.db.QueryRowContext(ctx, query).Scan(dest...); err != nil {
		return nil, fmt.Errorf("select from %s: %w", s.table, err)
	}
	for i, d := range dest {
		out[i] = s.columns[i] + "=" + d.(*sql.NullString).String
	}
	return out, nil
}
