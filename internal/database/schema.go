package database

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lastgood/lastgood/internal/migrate"
)

// Schema is a snapshot of a database's catalog: what lint compares before
// and after each statement.
type Schema struct {
	// ByName is set when identities are names (SQLite, where a table is
	// known by its name and a rename is told by its root page); otherwise
	// IDs are catalog identities that a rename keeps (PostgreSQL's OIDs and
	// attribute numbers).
	ByName     bool
	Namespaces []string
	Tables     []*Table
}

// Table is a table or a view.
type Table struct {
	ID        string
	Namespace string // "" on SQLite
	Name      string
	View      bool
	Rows      int64 // -1 when not counted
	Columns   []*Column
	Indexes   []*Index
	// Constraints are the check, foreign key and exclusion constraints;
	// unique and primary keys are among Indexes.
	Constraints []*Constraint
	// Hint is a second identity used when names do not match: SQLite's
	// root page, which a rename keeps.
	Hint string
}

// Column is one column of a table.
type Column struct {
	ID      string
	Name    string
	Type    string
	NotNull bool
	Default bool // has a default (or is an identity or generated column)
}

// Index is an index, or the index of a unique or primary key.
type Index struct {
	ID     string
	Name   string
	Unique bool
}

// Constraint is a check, foreign key or exclusion constraint.
type Constraint struct {
	ID   string
	Name string
	Kind string
}

// display names a table for people: its name, with its schema unless it
// is public.
func (t *Table) display() string {
	if t.Namespace == "" || t.Namespace == "public" {
		return t.Name
	}
	return t.Namespace + "." + t.Name
}

// change is one thing a statement did to the schema.
type change struct {
	class migrate.Class
	what  string
	why   string
	table string // the table changed or dropped, "" for none
	drop  bool   // the table, or a column of it, was dropped
}

// facts are what the parser knows of a statement that no schema diff
// shows.
type facts struct {
	// concurrently: CREATE INDEX CONCURRENTLY.
	concurrently bool
	// deletes names the tables a DELETE or TRUNCATE empties or thins.
	deletes  []string
	truncate bool
}

// diff compares the schema before and after one statement. created holds
// the IDs of the tables created earlier in the same release: changes to
// them are compatible, since no running code uses them yet; diff adds the
// tables it sees created.
func diff(before, after *Schema, f facts, created map[string]bool) []change {
	var out []change
	add := func(c change) { out = append(out, c) }
	for _, ns := range before.Namespaces {
		if !slices.Contains(after.Namespaces, ns) {
			add(change{class: migrate.Destructive, what: "drops schema " + ns,
				why: "its queries on the tables in " + ns + " fail, and their rows are gone"})
		}
	}
	pairs, gone, fresh := matchTables(before, after)
	for _, t := range gone {
		if created[t.ID] {
			continue
		}
		if t.View {
			add(change{class: migrate.Incompatible, what: "drops view " + t.display(), table: t.display(),
				why: "its queries on " + t.display() + " fail"})
			continue
		}
		what := "drops table " + t.display()
		if t.Rows > 0 {
			what += fmt.Sprintf(" and its %d rows", t.Rows)
		}
		add(change{class: migrate.Destructive, what: what, table: t.display(), drop: true,
			why: "its queries on " + t.display() + " fail, and the rows are gone"})
	}
	for _, t := range fresh {
		created[t.ID] = true
		kind := "table"
		if t.View {
			kind = "view"
		}
		add(change{class: migrate.Compatible, what: "creates " + kind + " " + t.display(), table: t.display()})
	}
	for _, p := range pairs {
		old, cur := p[0], p[1]
		if created[old.ID] || created[cur.ID] {
			created[cur.ID] = true
			if tableChanged(old, cur) {
				add(change{class: migrate.Compatible, what: "changes " + cur.display() + ", created in this release", table: cur.display()})
			}
			continue
		}
		if old.display() != cur.display() {
			add(change{class: migrate.Incompatible, what: fmt.Sprintf("renames %s to %s", old.display(), cur.display()), table: old.display(),
				why: "its queries that name " + old.display() + " fail"})
		}
		out = append(out, diffColumns(before.ByName, old, cur)...)
		out = append(out, diffIndexes(!before.ByName, old, cur, f)...)
		for _, c := range cur.Constraints {
			if !slices.ContainsFunc(old.Constraints, func(o *Constraint) bool { return o.ID == c.ID }) {
				add(change{class: migrate.Incompatible, what: fmt.Sprintf("adds %s constraint %s to %s", c.Kind, c.Name, cur.display()), table: cur.display(),
					why: "existing rows may violate it, and its writes that it refuses fail (a data-dependent change)"})
			}
		}
		if old.Rows > 0 && cur.Rows >= 0 && cur.Rows < old.Rows {
			add(change{class: migrate.Destructive, what: fmt.Sprintf("deletes %d of the %d rows of %s", old.Rows-cur.Rows, old.Rows, cur.display()), table: cur.display(),
				why: "the rows it still reads are gone"})
		}
	}
	for _, t := range f.deletes {
		if slices.ContainsFunc(out, func(c change) bool { return c.class == migrate.Destructive && c.table == t }) {
			continue
		}
		verb := "deletes rows of "
		if f.truncate {
			verb = "empties "
		}
		add(change{class: migrate.Destructive, what: verb + t, table: t, why: "the rows it still reads are gone"})
	}
	return out
}

// matchTables pairs the tables of two snapshots: by ID (PostgreSQL), or
// by name and then, for the rest, by root page (SQLite: a rename keeps
// the page).
func matchTables(before, after *Schema) (pairs [][2]*Table, gone, fresh []*Table) {
	used := map[*Table]bool{}
	find := func(t *Table) *Table {
		key := func(u *Table) bool { return !used[u] && u.ID == t.ID }
		if before.ByName {
			key = func(u *Table) bool { return !used[u] && u.display() == t.display() && u.View == t.View }
		}
		if i := slices.IndexFunc(after.Tables, key); i >= 0 {
			return after.Tables[i]
		}
		return nil
	}
	var rest []*Table
	for _, t := range before.Tables {
		if u := find(t); u != nil {
			used[u] = true
			pairs = append(pairs, [2]*Table{t, u})
		} else {
			rest = append(rest, t)
		}
	}
	for _, t := range rest {
		i := slices.IndexFunc(after.Tables, func(u *Table) bool { return !used[u] && t.Hint != "" && u.Hint == t.Hint })
		if i < 0 {
			gone = append(gone, t)
			continue
		}
		used[after.Tables[i]] = true
		pairs = append(pairs, [2]*Table{t, after.Tables[i]})
	}
	for _, u := range after.Tables {
		if !used[u] {
			fresh = append(fresh, u)
		}
	}
	return pairs, gone, fresh
}

func tableChanged(a, b *Table) bool {
	if a.display() != b.display() || len(a.Columns) != len(b.Columns) || len(a.Indexes) != len(b.Indexes) || len(a.Constraints) != len(b.Constraints) {
		return true
	}
	for i := range a.Columns {
		if *a.Columns[i] != *b.Columns[i] {
			return true
		}
	}
	return false
}

// matchColumns pairs columns by ID, or (SQLite) by name, and then pairs a
// lone missing column with a lone new one in the same place: a rename.
func matchColumns(byName bool, old, cur *Table) (pairs [][2]*Column, gone, fresh []*Column) {
	used := map[*Column]bool{}
	var rest []*Column
	for _, c := range old.Columns {
		i := slices.IndexFunc(cur.Columns, func(d *Column) bool {
			if byName {
				return !used[d] && d.Name == c.Name
			}
			return !used[d] && d.ID == c.ID
		})
		if i < 0 {
			rest = append(rest, c)
			continue
		}
		used[cur.Columns[i]] = true
		pairs = append(pairs, [2]*Column{c, cur.Columns[i]})
	}
	var added []*Column
	for _, d := range cur.Columns {
		if !used[d] {
			added = append(added, d)
		}
	}
	if byName && len(rest) == 1 && len(added) == 1 && len(old.Columns) == len(cur.Columns) {
		pos := func(t *Table, c *Column) int { return slices.Index(t.Columns, c) }
		if pos(old, rest[0]) == pos(cur, added[0]) {
			return append(pairs, [2]*Column{rest[0], added[0]}), nil, nil
		}
	}
	return pairs, rest, added
}

func diffColumns(byName bool, old, cur *Table) []change {
	var out []change
	t := cur.display()
	pairs, gone, fresh := matchColumns(byName, old, cur)
	for _, c := range gone {
		out = append(out, change{class: migrate.Destructive, what: fmt.Sprintf("drops column %s.%s and its data", t, c.Name), table: t, drop: true,
			why: fmt.Sprintf("its queries that name %s.%s fail, and the values are gone", t, c.Name)})
	}
	for _, c := range fresh {
		switch {
		case cur.View:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("adds column %s to view %s", c.Name, t), table: t})
		case c.NotNull && !c.Default:
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("adds column %s.%s NOT NULL without a default", t, c.Name), table: t,
				why: fmt.Sprintf("its INSERTs into %s do not name %s and fail", t, c.Name)})
		case c.Default:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("adds column %s.%s with a default", t, c.Name), table: t})
		default:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("adds nullable column %s.%s", t, c.Name), table: t})
		}
	}
	for _, p := range pairs {
		a, b := p[0], p[1]
		if a.Name != b.Name {
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("renames column %s.%s to %s", t, a.Name, b.Name), table: t,
				why: fmt.Sprintf("its queries that name %s.%s fail", t, a.Name)})
		}
		if !strings.EqualFold(a.Type, b.Type) {
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("changes the type of %s.%s from %s to %s", t, b.Name, a.Type, b.Type), table: t,
				why: fmt.Sprintf("it reads and writes %s.%s as %s", t, b.Name, a.Type)})
		}
		if !a.NotNull && b.NotNull {
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("makes %s.%s NOT NULL", t, b.Name), table: t,
				why: fmt.Sprintf("its writes that leave %s.%s empty fail", t, b.Name)})
		}
		if a.Default && !b.Default && b.NotNull {
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("drops the default of NOT NULL column %s.%s", t, b.Name), table: t,
				why: fmt.Sprintf("its INSERTs that leave %s out fail", b.Name)})
		}
		switch {
		case a.NotNull && !b.NotNull:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("drops NOT NULL from %s.%s", t, b.Name), table: t})
		case !a.Default && b.Default:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("sets a default on %s.%s", t, b.Name), table: t})
		case a.Default && !b.Default && !b.NotNull:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("drops the default of %s.%s", t, b.Name), table: t})
		}
	}
	return out
}

// diffIndexes compares the indexes of a table; on PostgreSQL (pg) an
// index built without CONCURRENTLY on an existing table locks its writes.
func diffIndexes(pg bool, old, cur *Table, f facts) []change {
	var out []change
	t := cur.display()
	has := func(ix []*Index, i *Index) bool {
		return slices.ContainsFunc(ix, func(j *Index) bool { return j.ID == i.ID })
	}
	for _, i := range cur.Indexes {
		if has(old.Indexes, i) {
			continue
		}
		switch {
		case i.Unique:
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("adds unique index %s to %s", i.Name, t), table: t,
				why: "existing rows may hold duplicates, and its writes of a duplicate fail (a data-dependent change)"})
		case pg && !f.concurrently:
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("builds index %s on %s without CONCURRENTLY", i.Name, t), table: t,
				why: fmt.Sprintf("its writes to %s wait until the build ends; use CREATE INDEX CONCURRENTLY (lastgood runs it outside the release's transaction)", t)})
		default:
			out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("adds index %s to %s", i.Name, t), table: t})
		}
	}
	for _, i := range old.Indexes {
		if has(cur.Indexes, i) {
			continue
		}
		if i.Unique {
			out = append(out, change{class: migrate.Incompatible, what: fmt.Sprintf("drops unique index %s of %s", i.Name, t), table: t,
				why: "its writes that rely on it (ON CONFLICT) fail"})
			continue
		}
		out = append(out, change{class: migrate.Compatible, what: fmt.Sprintf("drops index %s of %s", i.Name, t), table: t})
	}
	return out
}
