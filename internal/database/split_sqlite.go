package database

import (
	"fmt"
	"strings"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lastgood/lastgood/internal/migrate"
)

// splitSQLite splits a migration file into statements with SQLite's own
// tokenizer: sqlite3_complete says whether text up to a semicolon is a
// whole statement, so semicolons in strings, comments and trigger bodies
// never cut one. Whether a statement is valid SQL, SQLite says when lint
// runs it on the scratch copy.
func splitSQLite(file, sql string) ([]stmt, error) {
	if strings.ContainsRune(sql, 0) {
		return nil, &SyntaxError{File: file, Line: lineAt(sql, strings.IndexByte(sql, 0)), Message: "holds a NUL byte"}
	}
	tls := libc.NewTLS()
	defer tls.Close()
	complete := func(s string) (bool, error) {
		p, err := libc.CString(s)
		if err != nil {
			return false, err
		}
		defer libc.Xfree(tls, p)
		return sqlite3.Xsqlite3_complete(tls, p) != 0, nil
	}
	var out []stmt
	start := 0
	for i := 0; i < len(sql); i++ {
		if sql[i] != ';' {
			continue
		}
		ok, err := complete(sql[start : i+1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if !ok {
			continue
		}
		if s, ok := sqliteStatement(sql, start, i+1); ok {
			out = append(out, s)
		}
		start = i + 1
	}
	if s, ok := sqliteStatement(sql, start, len(sql)); ok {
		if done, err := complete(sql[start:] + ";"); err != nil || !done {
			return nil, &SyntaxError{File: file, Line: s.Line, Message: fmt.Sprintf("%s: the statement does not end", oneLine(s.SQL))}
		}
		out = append(out, s)
	}
	return out, nil
}

// sqliteStatement is the statement in sql[start:end] after the blanks and
// comments that lead it; ok is false when nothing else is there. A
// statement begins where the previous one ended, outside any string, so
// only comments and blanks can lead it.
func sqliteStatement(sql string, start, end int) (stmt, bool) {
	i := start
	for i < end {
		switch {
		case sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '\f':
			i++
		case strings.HasPrefix(sql[i:end], "--"):
			j := strings.IndexByte(sql[i:end], '\n')
			if j < 0 {
				i = end
			} else {
				i += j + 1
			}
		case strings.HasPrefix(sql[i:end], "/*"):
			j := strings.Index(sql[i+2:end], "*/")
			if j < 0 {
				i = end
			} else {
				i += j + 4
			}
		default:
			text := strings.TrimSpace(sql[i:end])
			if strings.Trim(text, ";") == "" {
				return stmt{}, false
			}
			return stmt{Statement: migrate.Statement{Line: lineAt(sql, i), SQL: text}}, true
		}
	}
	return stmt{}, false
}
