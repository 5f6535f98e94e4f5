package database

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/lastgood/lastgood/internal/migrate"
)

// stmt is one statement of a migration file, with what the parser knows
// of it.
type stmt struct {
	migrate.Statement
	facts facts
	// index is the schema-qualified name of the index a CREATE INDEX
	// CONCURRENTLY builds, dropped again when the build fails (a failed
	// concurrent build leaves an invalid index behind).
	index string
}

// SyntaxError is SQL that does not parse, located in its file.
type SyntaxError struct {
	File    string
	Line    int
	Message string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Message
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
}

// Field is the manifest field the problem is about.
func (e *SyntaxError) Field() string { return "database.migrations" }

// lineAt is the 1-based line of byte offset off in s.
func lineAt(s string, off int) int {
	if off > len(s) {
		off = len(s)
	}
	return strings.Count(s[:off], "\n") + 1
}

// splitPostgres splits a migration file into statements with PostgreSQL's
// own parser (libpg_query), so that strings, dollar quotes, comments and
// function bodies never cut a statement, and SQL that does not parse is
// refused before anything runs.
func splitPostgres(file, sql string) ([]stmt, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		line := 0
		var pe *pgparser.Error
		if errors.As(err, &pe) && pe.Cursorpos > 0 {
			line = lineAt(sql, pe.Cursorpos-1)
		}
		return nil, &SyntaxError{File: file, Line: line, Message: "does not parse as PostgreSQL: " + err.Error()}
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, &SyntaxError{File: file, Message: "does not scan as PostgreSQL: " + err.Error()}
	}
	var out []stmt
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		// The statement's text starts at its first token that is not a
		// comment.
		for _, tok := range scan.Tokens {
			if int(tok.Start) >= start && int(tok.Start) < end && tok.Token != pg_query.Token_SQL_COMMENT && tok.Token != pg_query.Token_C_COMMENT {
				start = int(tok.Start)
				break
			}
		}
		s := stmt{Statement: migrate.Statement{Line: lineAt(sql, start), SQL: strings.TrimSpace(sql[start:end])}}
		if err := pgFacts(&s, raw.Stmt); err != nil {
			return nil, &SyntaxError{File: file, Line: s.Line, Message: err.Error()}
		}
		out = append(out, s)
	}
	return out, nil
}

// pgFacts records what the parse tree says that a schema diff cannot see:
// statements that cannot run inside a transaction, and rows deleted.
func pgFacts(s *stmt, n *pg_query.Node) error {
	switch {
	case n.GetTransactionStmt() != nil:
		return fmt.Errorf("%s: lastgood runs all of a release's migrations in one transaction; leave BEGIN, COMMIT and ROLLBACK out of the files", oneLine(s.SQL))
	case n.GetIndexStmt() != nil:
		ix := n.GetIndexStmt()
		if ix.Concurrent {
			s.Alone, s.facts.concurrently = true, true
			if ix.Idxname != "" && ix.Relation != nil {
				s.index = quoteIdent(ix.Idxname)
				if ix.Relation.Schemaname != "" {
					s.index = quoteIdent(ix.Relation.Schemaname) + "." + s.index
				}
			}
		}
	case n.GetDropStmt() != nil:
		s.Alone = n.GetDropStmt().Concurrent
	case n.GetReindexStmt() != nil:
		for _, p := range n.GetReindexStmt().Params {
			if d := p.GetDefElem(); d != nil && d.Defname == "concurrently" {
				s.Alone = true
			}
		}
	case n.GetVacuumStmt() != nil, n.GetCreatedbStmt() != nil, n.GetDropdbStmt() != nil,
		n.GetAlterSystemStmt() != nil, n.GetCreateTableSpaceStmt() != nil, n.GetDropTableSpaceStmt() != nil:
		s.Alone = true
	case n.GetDeleteStmt() != nil:
		if r := n.GetDeleteStmt().Relation; r != nil {
			s.facts.deletes = append(s.facts.deletes, rangeName(r))
		}
	case n.GetTruncateStmt() != nil:
		s.facts.truncate = true
		for _, r := range n.GetTruncateStmt().Relations {
			if rv := r.GetRangeVar(); rv != nil {
				s.facts.deletes = append(s.facts.deletes, rangeName(rv))
			}
		}
	}
	return nil
}

func rangeName(r *pg_query.RangeVar) string {
	if r.Schemaname == "" || r.Schemaname == "public" {
		return r.Relname
	}
	return r.Schemaname + "." + r.Relname
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// oneLine shortens a statement to one line for a message.
func oneLine(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
