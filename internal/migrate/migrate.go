// Package migrate is the pure part of lastgood's schema migrations: the
// layout of a migrations folder (golang-migrate's NNN_name.up.sql and
// .down.sql), the classes a change falls in, and the written policy that
// decides, at apply, which migrations a release may run while the stable
// revision serves, and, at a rollback, which of them are reverted. It does
// no I/O; internal/database runs and classifies the SQL.
package migrate

import (
	"fmt"
	"slices"
)

// Class says what a change does to the revision that serves while it runs.
type Class string

// The classes, from the harmless to the worst. The names follow the
// analyzers Atlas publishes (DS: destructive, BC: backward-incompatible).
const (
	// Compatible changes leave the running code working: a new table, a
	// nullable column or one with a default, an index (built concurrently
	// on PostgreSQL), a relaxed constraint.
	Compatible Class = "compatible"
	// Incompatible changes break code written for the old schema without
	// losing data: a rename, a type change, NOT NULL without a default, a
	// new unique or check constraint on existing rows.
	Incompatible Class = "backward-incompatible"
	// Destructive changes lose data: a dropped table, column or schema,
	// deleted rows. No rollback brings them back.
	Destructive Class = "destructive"
)

func (c Class) rank() int {
	switch c {
	case Destructive:
		return 2
	case Incompatible:
		return 1
	}
	return 0
}

// Worse returns the worse of two classes.
func Worse(a, b Class) Class {
	if b.rank() > a.rank() {
		return b
	}
	if a == "" {
		return Compatible
	}
	return a
}

// Script is one migration file of a revision.
type Script struct {
	// Path is the file as the revision names it, like
	// migrations/003_add_email.up.sql.
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// Migration is one version: its up file and, when there is one, its down
// file.
type Migration struct {
	Version uint64 `json:"version"`
	// Digits is the version as the file name writes it ("003").
	Digits string  `json:"digits"`
	Name   string  `json:"name"`
	Up     Script  `json:"up"`
	Down   *Script `json:"down,omitempty"`
}

func (m Migration) String() string { return fmt.Sprintf("%s_%s", m.Digits, m.Name) }

// Set is a revision's migrations folder in version order: versions 1, 2,
// 3 … without a gap.
type Set struct {
	// Dir is the folder as the manifest writes it, cleaned.
	Dir        string      `json:"dir"`
	Migrations []Migration `json:"migrations"`
}

// Version is the schema version the set brings a database to: its last
// migration's version, 0 for an empty set.
func (s Set) Version() uint64 {
	if len(s.Migrations) == 0 {
		return 0
	}
	return s.Migrations[len(s.Migrations)-1].Version
}

// Get returns migration v, or nil.
func (s Set) Get(v uint64) *Migration {
	i := slices.IndexFunc(s.Migrations, func(m Migration) bool { return m.Version == v })
	if i < 0 {
		return nil
	}
	return &s.Migrations[i]
}

// Between returns the migrations after version from, up to and including
// version to, in order.
func (s Set) Between(from, to uint64) []Migration {
	var out []Migration
	for _, m := range s.Migrations {
		if m.Version > from && m.Version <= to {
			out = append(out, m)
		}
	}
	return out
}

// Statement is one SQL statement of a migration file.
type Statement struct {
	// Line is the line of the file the statement starts on (1-based).
	Line int    `json:"line"`
	SQL  string `json:"sql"`
	// Alone marks a statement that cannot run inside a transaction
	// (CREATE INDEX CONCURRENTLY): it runs by itself.
	Alone bool `json:"alone,omitempty"`
}

// Finding is what lint found one statement of a migration does.
type Finding struct {
	Version   uint64 `json:"version"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Statement string `json:"statement"`
	Class     Class  `json:"class"`
	// Change says what the statement does, like "renames column
	// users.name to full_name".
	Change string `json:"change,omitempty"`
	// Why says what happens to code written for the old schema.
	Why string `json:"why,omitempty"`
	// Tables are the existing tables the statement changes, and Drops
	// those it drops, or drops a column of.
	Tables []string `json:"tables,omitempty"`
	Drops  []string `json:"drops,omitempty"`
}

// Lint is what linting a release's migrations on a scratch copy found.
type Lint struct {
	// From is the live database's schema version, To the release's.
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Findings are the statements of the migrations From+1 … To, in order.
	Findings []Finding `json:"findings"`
	// Downs is the worst class of each of those migrations' down files,
	// run in reverse on the scratch copy after the ups; DownErrors says
	// why a down file failed there.
	Downs      map[uint64]Class  `json:"downs,omitempty"`
	DownErrors map[uint64]string `json:"downErrors,omitempty"`
	// Touched lists, for every migration up to To, the tables it created
	// or changed: what expand/contract looks at.
	Touched map[uint64][]string `json:"touched,omitempty"`
	// Alone are the statements that run outside the release's
	// transaction.
	Alone []Finding `json:"alone,omitempty"`
	// Warnings are things lint could not check.
	Warnings []string `json:"warnings,omitempty"`
}

// Class is the worst class of migration v's statements.
func (l Lint) Class(v uint64) Class {
	c := Compatible
	for _, f := range l.Findings {
		if f.Version == v {
			c = Worse(c, f.Class)
		}
	}
	return c
}

// Statement outcomes in a Run.
const (
	OutcomeApplied    = "applied"     // ran and committed
	OutcomeFailed     = "failed"      // the database refused it
	OutcomeRolledBack = "rolled back" // ran, then undone with its transaction
	OutcomeNotRun     = "not run"     // after the failure
)

// Run is the record of one run of migrations against the live database,
// up (a release) or down (a revert): what the event log and the incident
// keep.
type Run struct {
	Direction string `json:"direction"` // "up" or "down"
	// Database names the database, never with its password.
	Database string `json:"database"`
	// Before and After are the schema versions around the run; After
	// equals Before when nothing committed.
	Before     uint64 `json:"before"`
	After      uint64 `json:"after"`
	Migrations []Ran  `json:"migrations"`
	// Error is the database's error with the statement, when it failed.
	Error string `json:"error,omitempty"`
}

// Ran is one migration file of a Run.
type Ran struct {
	Version    uint64         `json:"version"`
	File       string         `json:"file"`
	Statements []RanStatement `json:"statements"`
}

// RanStatement is one statement of a Run and what became of it.
type RanStatement struct {
	Line int    `json:"line"`
	SQL  string `json:"sql"`
	// Alone is set for a statement run outside the transaction.
	Alone   bool   `json:"alone,omitempty"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}
