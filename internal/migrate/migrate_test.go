package migrate

import (
	"strings"
	"testing"
	"time"
)

func files(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m["migrations/"+n] = "sha256:" + strings.Repeat("0", 64)
	}
	return m
}

func TestLayout(t *testing.T) {
	set, problems := Layout("./migrations", files("001_init.up.sql", "001_init.down.sql", "002_add_email.up.sql"))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if set.Dir != "migrations" || set.Version() != 2 || len(set.Migrations) != 2 {
		t.Fatalf("set = %+v", set)
	}
	first := set.Migrations[0]
	if first.Digits != "001" || first.Name != "init" || first.Down == nil || first.Down.Path != "migrations/001_init.down.sql" {
		t.Errorf("first = %+v", first)
	}
	if set.Migrations[1].Down != nil {
		t.Errorf("002 has no down file, got %+v", set.Migrations[1].Down)
	}
	if got := set.Between(1, 2); len(got) != 1 || got[0].Version != 2 {
		t.Errorf("Between(1, 2) = %+v", got)
	}
}

func TestLayoutProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		file  string // the file the problem names
		want  string
	}{
		{"gap", []string{"001_a.up.sql", "003_c.up.sql"}, "migrations/003_c.up.sql", "migration 2 is missing (a gap"},
		{"wide gap", []string{"001_a.up.sql", "005_c.up.sql"}, "migrations/005_c.up.sql", "migrations 2 to 4 are missing"},
		{"duplicate", []string{"001_a.up.sql", "002_b.up.sql", "002_c.up.sql"}, "migrations/002_c.up.sql", "two up migrations numbered 2"},
		{"down without up", []string{"001_a.up.sql", "002_b.down.sql"}, "migrations/002_b.down.sql", "has no up migration: add 002_b.up.sql"},
		{"mismatched down", []string{"001_a.up.sql", "001_b.down.sql"}, "migrations/001_b.down.sql", "name it 001_a.down.sql"},
		{"not from 1", []string{"002_b.up.sql"}, "migrations/002_b.up.sql", "numbering starts at 1"},
		{"bad name", []string{"001_a.up.sql", "notes.sql"}, "migrations/notes.sql", "is not a migration file"},
		{"not sql", []string{"001_a.up.txt"}, "migrations/001_a.up.txt", "is not a migration file"},
		{"version 0", []string{"000_a.up.sql"}, "migrations/000_a.up.sql", "numbered from 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := Layout("migrations", files(tc.files...))
			for _, p := range problems {
				if p.File == tc.file && strings.Contains(p.Message, tc.want) {
					return
				}
			}
			t.Errorf("want a problem of %s saying %q, got %v", tc.file, tc.want, problems)
		})
	}
}

func TestInDir(t *testing.T) {
	if !InDir("./migrations", FilePath("./migrations", "001_a.up.sql")) {
		t.Error("a file of the folder is not in it")
	}
	if InDir("./migrations", "migrations/sub/001_a.up.sql") || InDir("./migrations", "bin/web") {
		t.Error("a file outside the folder is in it")
	}
}

func set3() Set {
	set, _ := Layout("migrations", files("001_init.up.sql", "001_init.down.sql", "002_full_name.up.sql", "002_full_name.down.sql",
		"003_drop_name.up.sql", "003_drop_name.down.sql"))
	return set
}

func TestCheckRefusesUnacknowledged(t *testing.T) {
	set := set3()
	lint := Lint{From: 1, To: 2, Findings: []Finding{{Version: 2, File: "migrations/002_full_name.up.sql", Line: 3,
		Statement: "ALTER TABLE users RENAME COLUMN name TO full_name", Class: Incompatible,
		Change: "renames column users.name to full_name", Why: "its queries that name users.name fail"}}}
	refusals, _ := Check(set, lint, Context{Stable: 4})
	if len(refusals) != 1 {
		t.Fatalf("refusals = %v", refusals)
	}
	r := refusals[0]
	for _, want := range []string{"ALTER TABLE users RENAME COLUMN name TO full_name", "backward-incompatible", "revision 4", "its queries that name users.name fail", "two releases", `migration: "002"`} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("message lacks %q: %s", want, r.Message)
		}
	}
	if r.File != "migrations/002_full_name.up.sql" || r.Line != 3 {
		t.Errorf("located at %s:%d", r.File, r.Line)
	}
	// acknowledged, with its down file: allowed
	if refusals, _ := Check(set, lint, Context{Stable: 4, Allow: map[uint64]string{2: "nothing reads name"}}); len(refusals) != 0 {
		t.Errorf("acknowledged: %v", refusals)
	}
}

func TestCheckNeedsDownForIncompatible(t *testing.T) {
	set, _ := Layout("migrations", files("001_init.up.sql", "002_rename.up.sql"))
	lint := Lint{From: 1, To: 2, Findings: []Finding{{Version: 2, File: "migrations/002_rename.up.sql", Line: 1, Class: Incompatible}}}
	refusals, _ := Check(set, lint, Context{Allow: map[uint64]string{2: "ok"}})
	if len(refusals) != 1 || !strings.Contains(refusals[0].Message, "no down file 002_rename.down.sql") || refusals[0].File != "migrations/002_rename.up.sql" {
		t.Errorf("refusals = %v", refusals)
	}
}

func TestCheckUnknownAcknowledgment(t *testing.T) {
	refusals, _ := Check(set3(), Lint{From: 3, To: 3}, Context{Allow: map[uint64]string{9: "typo"}})
	if len(refusals) != 1 || refusals[0].Field != "database.allow" || !strings.Contains(refusals[0].Message, "migration 9") {
		t.Errorf("refusals = %v", refusals)
	}
}

func TestCheckContract(t *testing.T) {
	set := set3()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	drop := Finding{Version: 3, File: "migrations/003_drop_name.up.sql", Line: 1, Statement: "ALTER TABLE users DROP COLUMN name",
		Class: Destructive, Change: "drops column users.name and its data", Drops: []string{"users"}}
	touched := map[uint64][]string{1: {"users"}, 2: {"users"}}
	ack := map[uint64]string{3: "the contract of 002"}
	for _, tc := range []struct {
		name    string
		from    uint64
		history map[uint64]Release
		want    string // "" for accepted
	}{
		{"settled expand", 2, map[uint64]Release{2: {Revision: 5, Settled: true}}, ""},
		{"expand before lastgood", 2, nil, ""},
		{"expand in window", 2, map[uint64]Release{2: {Revision: 5, WindowEnds: now.Add(40 * time.Second)}}, "rollback window ends at 2025-01-01T12:00:40Z (in 40s)"},
		{"expand rolled back", 2, map[uint64]Release{2: {Revision: 5, RolledBack: true}}, "was rolled back"},
		{"same release", 1, nil, "in this same release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lint := Lint{From: tc.from, To: 3, Findings: []Finding{drop}, Touched: touched}
			if tc.from == 1 {
				lint.Findings = append([]Finding{{Version: 2, Class: Compatible, Tables: []string{"users"}}}, drop)
			}
			refusals, _ := Check(set, lint, Context{Allow: ack, History: tc.history, Now: now})
			switch {
			case tc.want == "" && len(refusals) > 0:
				t.Errorf("refused: %v", refusals)
			case tc.want != "" && (len(refusals) != 1 || !strings.Contains(refusals[0].Message, tc.want)):
				t.Errorf("want a refusal saying %q, got %v", tc.want, refusals)
			case tc.want != "" && !strings.Contains(refusals[0].Message, "002_full_name"):
				t.Errorf("the refusal does not name the expand: %v", refusals[0])
			}
		})
	}
	// unacknowledged: refused as destructive, whatever the history
	refusals, _ := Check(set, Lint{From: 2, To: 3, Findings: []Finding{drop}, Touched: touched}, Context{Now: now})
	if len(refusals) != 1 || !strings.Contains(refusals[0].Message, "destructive") {
		t.Errorf("unacknowledged drop: %v", refusals)
	}
}

func TestOnRollback(t *testing.T) {
	set := set3()
	m1, m2, m3 := set.Migrations[0], set.Migrations[1], set.Migrations[2]
	noDown := m2
	noDown.Down = nil
	for _, tc := range []struct {
		name    string
		applied []Applied
		revert  []uint64
		to      uint64
		frozen  bool
		want    string
	}{
		{"nothing ran", nil, nil, 1, false, "no migration ran"},
		{"compatible stay", []Applied{{Migration: m2, Class: Compatible, Down: Destructive}}, nil, 2, false, "compatible and stay"},
		{"incompatible reverted", []Applied{{Migration: m2, Class: Incompatible, Down: Incompatible}}, []uint64{2}, 1, false, "schema version 2 → 1"},
		{"compatible below stays", []Applied{{Migration: m2, Class: Compatible, Down: Destructive}, {Migration: m3, Class: Incompatible, Down: Compatible}}, []uint64{3}, 2, false, "reverting 003_drop_name"},
		{"destructive down freezes", []Applied{{Migration: m2, Class: Incompatible, Down: Destructive}}, nil, 2, true, "down file of 002_full_name is destructive"},
		{"no down freezes", []Applied{{Migration: noDown, Class: Incompatible}}, nil, 2, true, "has no down file"},
		{"compatible above with destructive down freezes", []Applied{{Migration: m2, Class: Incompatible, Down: Compatible}, {Migration: m3, Class: Compatible, Down: Destructive}}, nil, 3, true, "down file of 003_drop_name is destructive"},
		{"destructive stays", []Applied{{Migration: m3, Class: Destructive, Down: Compatible}}, nil, 3, false, "is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := OnRollback(m1.Version, tc.applied, 2)
			var got []uint64
			for _, m := range d.Revert {
				got = append(got, m.Version)
			}
			if len(got) != len(tc.revert) || (len(got) > 0 && got[0] != tc.revert[0]) {
				t.Errorf("revert %v, want %v", got, tc.revert)
			}
			if d.To != tc.to || d.Frozen != tc.frozen || !strings.Contains(d.Message, tc.want) {
				t.Errorf("decision %+v; want to %d frozen %v message with %q", d, tc.to, tc.frozen, tc.want)
			}
			if d.Frozen && len(d.Manual) == 0 {
				t.Errorf("frozen without manual steps: %+v", d)
			}
		})
	}
}
