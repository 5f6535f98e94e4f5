package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestActorIsStoredAndChained: an event's actor reads back as written,
// and editing, adding or removing it breaks the chain.
func TestActorIsStoredAndChained(t *testing.T) {
	path := dbPath(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, "web", 3)
	update(t, s, func(tx *Tx) error {
		_, err := tx.AppendEvent(Event{App: "web", Type: "rollout.aborted", Message: "aborted", Actor: "alice"})
		return err
	})
	appendEvents(t, s, "web", 2)
	evs, err := s.Events(context.Background(), EventQuery{})
	if err != nil || len(evs) != 6 || evs[3].Actor != "alice" || evs[2].Actor != "" {
		t.Fatalf("events %+v, %v", evs, err)
	}
	s.Close()
	for _, tc := range []struct {
		sql string
		seq int64
	}{
		{"UPDATE events SET actor = 'mallory' WHERE seq = 4", 4},
		{"UPDATE events SET actor = '' WHERE seq = 4", 4},
		{"UPDATE events SET actor = 'alice' WHERE seq = 2", 2},
	} {
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		var was string
		raw.QueryRow("SELECT actor FROM events WHERE seq = ?", tc.seq).Scan(&was)
		if _, err := raw.Exec(tc.sql); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		s := openAt(t, path)
		a, err := s.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if a.OK() || a.Problems[0].Seq != tc.seq || a.Problems[0].Kind != ProblemEdited {
			t.Errorf("%s: audit %+v", tc.sql, a)
		}
		s.Close()
		raw, _ = sql.Open("sqlite", path)
		raw.Exec("UPDATE events SET actor = ? WHERE seq = ?", was, tc.seq)
		raw.Close()
	}
	if a, err := openAt(t, path).Verify(context.Background()); err != nil || !a.OK() {
		t.Fatalf("restored log: %+v %v", a, err)
	}
}

// TestEventsWithoutActorKeepTheirHashes: an event without an actor hashes
// exactly as schema versions 1 and 2 did (eight netstrings), so logs written
// before the actor column still verify.
func TestEventsWithoutActorKeepTheirHashes(t *testing.T) {
	r := record{seq: 7, time: "2026-03-04T10:20:30.5Z", app: "web", rollout: 2, revision: 3,
		typ: "rollout.started", message: "rollout #2 started", data: `{"a":1}`}
	h := sha256.New()
	h.Write([]byte(genesisHash))
	for _, f := range []string{"7", r.time, "web", "2", "3", r.typ, r.message, r.data} {
		fmt.Fprintf(h, "%d:%s,", len(f), f)
	}
	if got, want := chainHash(genesisHash, r), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("hash without actor %s, version 1 gave %s", got, want)
	}
	r.actor = "alice"
	if chainHash(genesisHash, r) == hex.EncodeToString(h.Sum(nil)) {
		t.Fatal("the actor is not part of the hash")
	}
}

// TestMigrationKeepsAVersion1Log: a database written by schema version 1
// opens, gains the actor column, and its log still verifies.
func TestMigrationKeepsAVersion1Log(t *testing.T) {
	path := dbPath(t)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(migrations[0] + "PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	prev := genesisHash
	for i := int64(1); i <= 3; i++ {
		r := record{seq: i, time: "2026-03-04T10:20:30Z", app: "web", typ: "step", message: fmt.Sprint("m", i), prevHash: prev}
		r.hash = chainHash(prev, r)
		if _, err := raw.Exec(`INSERT INTO events (seq, time, app, rollout, revision, type, message, data, prev_hash, hash) VALUES (?, ?, ?, 0, 0, ?, ?, NULL, ?, ?)`,
			r.seq, r.time, r.app, r.typ, r.message, r.prevHash, r.hash); err != nil {
			t.Fatal(err)
		}
		prev = r.hash
	}
	if _, err := raw.Exec(`UPDATE chain_head SET seq = 3, hash = ?`, prev); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s := openAt(t, path)
	update(t, s, func(tx *Tx) error {
		_, err := tx.AppendEvent(Event{App: "web", Type: "rollout.aborted", Actor: "alice"})
		return err
	})
	a, err := s.Verify(context.Background())
	if err != nil || !a.OK() || a.Events != 4 {
		t.Fatalf("audit after migration: %+v %v", a, err)
	}
}
