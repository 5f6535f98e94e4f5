package store

import (
	"context"
	"database/sql"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// tamperedLog appends 20 events to a fresh database, closes it, runs sql
// against the file through a separate plain database/sql connection, and
// returns the reopened store's audit along with the head hash exported
// before the tampering.
func tamperedLog(t *testing.T, sqls ...string) (Audit, string) {
	t.Helper()
	path := dbPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, "web", 20)
	before, err := s.Verify(context.Background())
	if err != nil || !before.OK() || before.Events != 20 || before.HeadSeq != 20 {
		t.Fatalf("untouched log: %+v, %v", before, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range sqls {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	a, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a, before.Head
}

type found struct {
	Seq  int64
	Kind string
}

func kinds(a Audit) []found {
	var out []found
	for _, p := range a.Problems {
		out = append(out, found{p.Seq, p.Kind})
	}
	return out
}

// swapColumns is SQL that swaps every column but seq between two events.
func swapColumns(a, b int) []string {
	cols := "time, app, rollout, revision, type, message, data, actor, prev_hash, hash"
	return []string{
		"CREATE TABLE tmp AS SELECT seq, " + cols + " FROM events WHERE seq IN (" + strconv.Itoa(a) + ", " + strconv.Itoa(b) + ")",
		"UPDATE events SET (" + cols + ") = (SELECT " + cols + " FROM tmp WHERE tmp.seq = " + strconv.Itoa(b) + ") WHERE seq = " + strconv.Itoa(a),
		"UPDATE events SET (" + cols + ") = (SELECT " + cols + " FROM tmp WHERE tmp.seq = " + strconv.Itoa(a) + ") WHERE seq = " + strconv.Itoa(b),
		"DROP TABLE tmp",
	}
}

func TestVerifyUntouchedLogIsClean(t *testing.T) {
	a, head := tamperedLog(t)
	if !a.OK() || a.Events != 20 || a.Head != head || a.HeadSeq != 20 {
		t.Fatalf("audit = %+v; want clean, 20 events, head %s", a, head)
	}
}

func TestVerifyEmptyLogIsClean(t *testing.T) {
	s := openTemp(t)
	a, err := s.Verify(context.Background())
	if err != nil || !a.OK() || a.Events != 0 || a.Head != genesisHash {
		t.Fatalf("audit of an empty log = %+v, %v", a, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sql     []string
		want    []found
		message string
	}{
		{
			name:    "edited message",
			sql:     []string{"UPDATE events SET message = 'all good' WHERE seq = 7"},
			want:    []found{{7, ProblemEdited}},
			message: "event 7: content was edited (hash mismatch)",
		},
		{
			name: "edited data and time",
			sql: []string{
				`UPDATE events SET data = '{"i":99}' WHERE seq = 3`,
				`UPDATE events SET time = '2001-01-01T00:00:00Z' WHERE seq = 15`,
			},
			want: []found{{3, ProblemEdited}, {15, ProblemEdited}},
		},
		{
			name:    "deleted in the middle",
			sql:     []string{"DELETE FROM events WHERE seq = 7"},
			want:    []found{{7, ProblemMissing}},
			message: "event 7 is missing (deleted): the log skips from event 6 to event 8",
		},
		{
			name:    "deleted several in the middle",
			sql:     []string{"DELETE FROM events WHERE seq BETWEEN 7 AND 9"},
			want:    []found{{7, ProblemMissing}},
			message: "events 7 to 9 are missing",
		},
		{
			name:    "deleted the first",
			sql:     []string{"DELETE FROM events WHERE seq = 1"},
			want:    []found{{1, ProblemMissing}},
			message: "the log starts at event 2",
		},
		{
			name:    "deleted the last",
			sql:     []string{"DELETE FROM events WHERE seq = 20"},
			want:    []found{{20, ProblemMissing}},
			message: "event 20 is missing (deleted): the chain head records 20 events but the log ends at event 19",
		},
		{
			name:    "rows swapped",
			sql:     swapColumns(5, 12),
			want:    []found{{5, ProblemReordered}, {12, ProblemReordered}},
			message: "event 5: holds the intact content of event 12",
		},
		{
			name:    "neighbours swapped",
			sql:     swapColumns(9, 10),
			want:    []found{{9, ProblemReordered}, {10, ProblemReordered}},
			message: "event 9: holds the intact content of event 10",
		},
		{
			name: "seq values swapped",
			sql: []string{
				"UPDATE events SET seq = -1 WHERE seq = 4",
				"UPDATE events SET seq = 4 WHERE seq = 16",
				"UPDATE events SET seq = 16 WHERE seq = -1",
			},
			want: []found{{4, ProblemReordered}, {16, ProblemReordered}},
		},
		{
			name:    "chain head deleted",
			sql:     []string{"DELETE FROM chain_head"},
			want:    []found{{20, ProblemHead}},
			message: "chain head record is missing",
		},
		{
			name:    "event appended behind lastgood's back",
			sql:     []string{"INSERT INTO events SELECT seq + 1, time, app, rollout, revision, type, message, data, hash, hash, actor FROM events WHERE seq = 20"},
			want:    []found{{21, ProblemEdited}, {21, ProblemHead}},
			message: "the chain head stops at event 20",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := tamperedLog(t, tc.sql...)
			for _, p := range a.Problems {
				t.Logf("%s at %d: %s", p.Kind, p.Seq, p.Message)
			}
			if got := kinds(a); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("problems = %+v\nwant %+v", a.Problems, tc.want)
			}
			if tc.message != "" && !anySays(a, tc.message) {
				t.Fatalf("no message says %q: %+v", tc.message, a.Problems)
			}
		})
	}
}

func anySays(a Audit, text string) bool {
	for _, p := range a.Problems {
		if strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}

// rehash recomputes the hash of event seq from its stored content, first
// relinking it to the event before if asked, and optionally moves the chain
// head to it: what an attacker who knows the construction would do.
func rehash(t *testing.T, path string, seq int64, relink, moveHead bool) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if relink {
		var prev string
		if err := raw.QueryRow("SELECT hash FROM events WHERE seq = ?", seq-1).Scan(&prev); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec("UPDATE events SET prev_hash = ? WHERE seq = ?", prev, seq); err != nil {
			t.Fatal(err)
		}
	}
	r, err := scanRecord(raw.QueryRow("SELECT "+eventColumns+" FROM events WHERE seq = ?", seq))
	if err != nil {
		t.Fatal(err)
	}
	h := chainHash(r.prevHash, r)
	if _, err := raw.Exec("UPDATE events SET hash = ? WHERE seq = ?", h, seq); err != nil {
		t.Fatal(err)
	}
	if moveHead {
		if _, err := raw.Exec("UPDATE chain_head SET hash = ?", h); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyRewritesWithRecomputedHashes(t *testing.T) {
	setup := func(t *testing.T, edit string) (string, string) {
		path := dbPath(t)
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		appendEvents(t, s, "web", 20)
		a, _ := s.Verify(context.Background())
		s.Close()
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(edit); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		return path, a.Head
	}
	verify := func(t *testing.T, path string) Audit {
		s := openAt(t, path)
		a, err := s.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("one event rehashed in the middle", func(t *testing.T) {
		path, _ := setup(t, "UPDATE events SET message = 'nothing to see' WHERE seq = 7")
		rehash(t, path, 7, false, false)
		a := verify(t, path)
		if got := kinds(a); !reflect.DeepEqual(got, []found{{7, ProblemEdited}}) {
			t.Fatalf("problems = %+v", a.Problems)
		}
		if !strings.Contains(a.Problems[0].Message, "event 8 links to a different hash") {
			t.Fatalf("message = %q", a.Problems[0].Message)
		}
	})
	t.Run("last event rehashed", func(t *testing.T) {
		path, _ := setup(t, "UPDATE events SET message = 'nothing to see' WHERE seq = 20")
		rehash(t, path, 20, false, false)
		a := verify(t, path)
		if got := kinds(a); !reflect.DeepEqual(got, []found{{20, ProblemHead}}) {
			t.Fatalf("problems = %+v", a.Problems)
		}
	})
	// The limit of a self-contained chain: whoever rewrites every hash from
	// some event on, and the chain head, goes unnoticed by Verify. Only a
	// head hash exported beforehand gives it away (see docs/store.md).
	t.Run("suffix rewritten with the head", func(t *testing.T) {
		path, exported := setup(t, "UPDATE events SET message = 'nothing to see' WHERE seq = 15")
		for seq := int64(15); seq <= 20; seq++ {
			rehash(t, path, seq, seq > 15, seq == 20)
		}
		a := verify(t, path)
		if !a.OK() {
			t.Fatalf("expected the rewrite to pass Verify, got %+v", a.Problems)
		}
		if a.Head == exported {
			t.Fatal("the head hash did not change: an exported head could not reveal the rewrite")
		}
	})
}

func TestAppendingAfterADeletedTailKeepsTheGapVisible(t *testing.T) {
	path := dbPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, "web", 5)
	s.Close()
	raw, _ := sql.Open("sqlite", path)
	if _, err := raw.Exec("DELETE FROM events WHERE seq = 5"); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s = openAt(t, path)
	next := appendEvents(t, s, "web", 1)
	if next[0].Seq != 6 {
		t.Fatalf("next event got seq %d, want 6 (after the head, not after the last row)", next[0].Seq)
	}
	a, _ := s.Verify(context.Background())
	if got := kinds(a); !reflect.DeepEqual(got, []found{{5, ProblemMissing}}) {
		t.Fatalf("problems = %+v", a.Problems)
	}
}
