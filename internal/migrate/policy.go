package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Release is what the history says of the release that first ran an
// earlier migration: whether it was promoted and its rollback window is
// over, which expand/contract waits for.
type Release struct {
	Revision int
	// Settled is set when the release was promoted and its rollback window
	// is over: nothing that predates it can come back.
	Settled bool
	// RolledBack is set when the release was rolled back.
	RolledBack bool
	// WindowEnds is when the rollback window of a promoted release ends.
	WindowEnds time.Time
}

// Context is what the apply-time policy needs besides the lint.
type Context struct {
	// Stable is the revision that serves while the migrations run, 0 for a
	// first release.
	Stable int
	// Allow maps an acknowledged migration's version to its reason.
	Allow map[uint64]string
	// History maps an earlier migration's version to its release; a
	// version it lacks ran before lastgood recorded it and is settled.
	History map[uint64]Release
	Now     time.Time
}

// Refusal is one reason a release's migrations cannot run.
type Refusal struct {
	// Field is the manifest field it is about: database.migrations, or
	// database.allow[i] for an acknowledgment.
	Field string
	// File and Line locate the statement, when there is one.
	File    string
	Line    int
	Message string
}

func (r Refusal) Error() string {
	switch {
	case r.File != "" && r.Line > 0:
		return fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Message)
	case r.File != "":
		return r.File + ": " + r.Message
	}
	return r.Message
}

// Check applies the written policy to a release's lint: a destructive or
// backward-incompatible statement needs its migration acknowledged in
// database.allow; an acknowledged backward-incompatible migration needs a
// down file, so that a rollback can give the stable revision its schema
// back; and a destructive one that drops what an earlier migration changed
// (the contract of an expand/contract pair) waits until that expand's
// release was promoted and its rollback window is over. It returns the
// refusals, and warnings that refuse nothing.
func Check(set Set, lint Lint, c Context) ([]Refusal, []string) {
	var refusals []Refusal
	var warnings []string
	stable := "the stable revision"
	if c.Stable > 0 {
		stable = fmt.Sprintf("revision %d, the stable one,", c.Stable)
	}
	refused := map[uint64]bool{}
	for _, f := range lint.Findings {
		if f.Class == Compatible {
			continue
		}
		m := set.Get(f.Version)
		if _, ok := c.Allow[f.Version]; ok || m == nil {
			continue
		}
		refused[f.Version] = true
		refusals = append(refusals, Refusal{Field: "database.migrations", File: f.File, Line: f.Line,
			Message: fmt.Sprintf("%s: %s: %s; %s serves throughout the rollout on the new schema and %s. %s",
				oneLine(f.Statement), f.Class, f.Change, stable, f.Why, advice(f, m))})
	}
	for _, m := range set.Between(lint.From, lint.To) {
		if _, ok := c.Allow[m.Version]; !ok || refused[m.Version] {
			continue
		}
		switch class := lint.Class(m.Version); {
		case class == Incompatible && m.Down == nil:
			refusals = append(refusals, Refusal{Field: "database.migrations", File: m.Up.Path,
				Message: fmt.Sprintf("is backward-incompatible and acknowledged, but has no down file %s_%s.down.sql: "+
					"a rollback could not give %s its schema back; add the down file", m.Digits, m.Name, strings.TrimSuffix(stable, ","))})
		case class == Incompatible && lint.DownErrors[m.Version] != "":
			refusals = append(refusals, Refusal{Field: "database.migrations", File: m.Down.Path,
				Message: fmt.Sprintf("the down file of an acknowledged backward-incompatible migration must work, so that a rollback can run it: %s", lint.DownErrors[m.Version])})
		case class == Incompatible && lint.Downs[m.Version] == Destructive:
			warnings = append(warnings, fmt.Sprintf("%s: its down file is destructive: a rollback will not run it, and the schema stays as the migration leaves it", m.Up.Path))
		case class == Destructive:
			refusals = append(refusals, contract(set, lint, c, m)...)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(c.Allow)) {
		if set.Get(v) == nil {
			refusals = append(refusals, Refusal{Field: "database.allow",
				Message: fmt.Sprintf("acknowledges migration %d, which %s does not have", v, set.Dir)})
		}
	}
	return refusals, warnings
}

// advice tells how to make a refused change safely.
func advice(f Finding, m *Migration) string {
	ack := fmt.Sprintf("To run it anyway, acknowledge it: database.allow: [{migration: \"%s\", reason: \"…\"}]", m.Digits)
	switch f.Class {
	case Destructive:
		return "If nothing uses it any more (the contract of an expand/contract change, released after the expand's rollback window is over), " + lower(ack) + "."
	default:
		return "Make it two releases: an expand that adds the new shape beside the old one (the code writes both), then, once the expand is promoted and its rollback window is over, a contract that drops the old shape. " + ack + "."
	}
}

func lower(s string) string { return strings.ToLower(s[:1]) + s[1:] }

// contract checks that a destructive migration m drops only what earlier,
// settled releases made obsolete: for each table it drops from, the last
// earlier migration that changed the table (the expand) must have been
// released, promoted, and its rollback window be over.
func contract(set Set, lint Lint, c Context, m Migration) []Refusal {
	var out []Refusal
	seen := map[string]bool{}
	for _, f := range lint.Findings {
		if f.Version != m.Version || f.Class != Destructive {
			continue
		}
		for _, table := range f.Drops {
			if seen[table] {
				continue
			}
			seen[table] = true
			expand := lastTouch(lint.Touched, table, m.Version)
			if expand == 0 {
				continue
			}
			e := set.Get(expand)
			name := fmt.Sprint(expand)
			if e != nil {
				name = e.String()
			}
			fail := func(format string, args ...any) {
				out = append(out, Refusal{Field: "database.migrations", File: f.File, Line: f.Line,
					Message: fmt.Sprintf("%s: contract before its expand is settled: %s; ", oneLine(f.Statement), f.Change) + fmt.Sprintf(format, args...) +
						" Expand/contract: the contract drops the old shape only once nothing that uses it can come back, that is once the expand's release is promoted and its rollback window is over."})
			}
			r, known := c.History[expand]
			switch {
			case expand > lint.From:
				fail("migration %s, the last one to change %s, is in this same release; release it first, promote it, and let its rollback window end", name, table)
			case !known:
			case r.RolledBack:
				fail("migration %s, the last one to change %s, was released by revision %d, which was rolled back; release the expand again and promote it first", name, table, r.Revision)
			case !r.Settled && !r.WindowEnds.IsZero():
				fail("migration %s, the last one to change %s, was released by revision %d, whose rollback window ends at %s (in %s): until then the revision before it, which may still use %s, can come back",
					name, table, r.Revision, r.WindowEnds.UTC().Format(time.RFC3339), r.WindowEnds.Sub(c.Now).Round(time.Second), table)
			case !r.Settled:
				fail("migration %s, the last one to change %s, was released by revision %d, which has not been promoted", name, table, r.Revision)
			}
		}
	}
	return out
}

// lastTouch is the last migration before v that created or changed table.
func lastTouch(touched map[uint64][]string, table string, v uint64) uint64 {
	var last uint64
	for u, tables := range touched {
		if u < v && u > last && slices.Contains(tables, table) {
			last = u
		}
	}
	return last
}

// oneLine shortens a statement to one line for a message.
func oneLine(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
