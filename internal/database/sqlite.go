package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

type sqlite struct{}

func (sqlite) where(path string) string { return "the SQLite file " + path }

// dsn opens a file with a busy timeout, immediate write transactions (a
// migration takes the write lock when it begins) and foreign keys on. The
// path is no file: URI, so that a # in it is part of the name.
func dsn(path string) string {
	return path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
}

// open opens the database file; a missing file is created (a first
// release makes its schema), but never a missing folder.
func (s sqlite) open(ctx context.Context, path string) (*sql.DB, error) {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: cannot open %s: its folder %s does not exist", ErrUnreachable, s.where(path), filepath.Dir(path))
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot open %s: %v", ErrUnreachable, s.where(path), err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: cannot open %s: %v", ErrUnreachable, s.where(path), err)
	}
	return db, nil
}

// openToRead opens the live file for lint; one that does not exist yet is
// read as an empty database, a scratch file that close removes, so lint
// never creates the live file.
func (s sqlite) openToRead(ctx context.Context, path string) (*sql.DB, func(), error) {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		db, err := s.open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("%w: cannot open %s: its folder %s does not exist", ErrUnreachable, s.where(path), filepath.Dir(path))
	}
	return s.empty(ctx, nil, "")
}

func (sqlite) split(file, sql string) ([]stmt, error) { return splitSQLite(file, sql) }

func scratchFile() (string, func(), error) {
	dir, err := os.MkdirTemp("", "lastgood-lint-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "scratch.db"), func() { os.RemoveAll(dir) }, nil
}

func (s sqlite) empty(ctx context.Context, _ *sql.DB, _ string) (*sql.DB, func(), error) {
	path, remove, err := scratchFile()
	if err != nil {
		return nil, nil, err
	}
	db, err := s.open(ctx, path)
	if err != nil {
		remove()
		return nil, nil, err
	}
	return db, func() { db.Close(); remove() }, nil
}

// copy writes a consistent copy of the live file, data and all, with
// VACUUM INTO, which reads one snapshot however the app writes meanwhile.
func (s sqlite) copy(ctx context.Context, live *sql.DB, _ string) (*sql.DB, func(), error) {
	path, remove, err := scratchFile()
	if err != nil {
		return nil, nil, err
	}
	if _, err := live.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		remove()
		return nil, nil, fmt.Errorf("copy the database for lint: %w", err)
	}
	db, err := s.open(ctx, path)
	if err != nil {
		remove()
		return nil, nil, err
	}
	return db, func() { db.Close(); remove() }, nil
}

func (sqlite) hasVersionTable(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	return n > 0, err
}

// lock: a SQLite write transaction begun IMMEDIATE holds the file's write
// lock already.
func (sqlite) lock(context.Context, *sql.Tx) error { return nil }

// snapshot reads sqlite_schema and each table's columns, indexes and row
// count. Tables are known by name; their root page, which a rename keeps,
// tells a rename from a drop and a create.
func (sqlite) snapshot(ctx context.Context, q querier) (*Schema, error) {
	s := &Schema{ByName: true}
	rows, err := q.QueryContext(ctx, `SELECT type, name, rootpage FROM sqlite_schema
		WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var kind string
		var page int64
		t := &Table{Rows: -1}
		if err := rows.Scan(&kind, &t.Name, &page); err != nil {
			rows.Close()
			return nil, err
		}
		t.ID, t.View = t.Name, kind == "view"
		if page > 0 {
			t.Hint = strconv.FormatInt(page, 10)
		}
		s.Tables = append(s.Tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, t := range s.Tables {
		if err := sqliteTable(ctx, q, t); err != nil {
			return nil, fmt.Errorf("inspect %s: %w", t.Name, err)
		}
	}
	return s, nil
}

func sqliteTable(ctx context.Context, q querier, t *Table) error {
	rows, err := q.QueryContext(ctx, `SELECT cid, name, type, "notnull", dflt_value IS NOT NULL, hidden FROM pragma_table_xinfo(?) ORDER BY cid`, t.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		var cid, hidden int
		c := &Column{}
		if err := rows.Scan(&cid, &c.Name, &c.Type, &c.NotNull, &c.Default, &hidden); err != nil {
			rows.Close()
			return err
		}
		c.ID = strconv.Itoa(cid)
		c.Default = c.Default || hidden != 0 // generated columns need no value
		t.Columns = append(t.Columns, c)
	}
	rows.Close()
	if t.View {
		return rows.Err()
	}
	rows, err = q.QueryContext(ctx, `SELECT name, "unique" FROM pragma_index_list(?) ORDER BY name`, t.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		ix := &Index{}
		if err := rows.Scan(&ix.Name, &ix.Unique); err != nil {
			rows.Close()
			return err
		}
		ix.ID = ix.Name
		t.Indexes = append(t.Indexes, ix)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	err = q.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(t.Name, `"`, `""`)+`"`).Scan(&t.Rows)
	if errors.Is(err, sql.ErrNoRows) {
		t.Rows = 0
		return nil
	}
	return err
}
