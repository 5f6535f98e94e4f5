package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"
)

// Problem kinds reported by Verify.
const (
	// ProblemEdited: an event's content no longer matches its hash, or it
	// was rewritten with a recomputed hash so the next event's link breaks.
	ProblemEdited = "edited"
	// ProblemMissing: events were deleted (a gap in Seq, or fewer events
	// than the chain head records).
	ProblemMissing = "missing"
	// ProblemReordered: a row holds an intact event that belongs at another
	// position (rows or Seq values were swapped).
	ProblemReordered = "reordered"
	// ProblemHead: the chain head record disagrees with the log's last event.
	ProblemHead = "head"
	// ProblemWitness: a head recorded outside the database — the anchor
	// file, an incident bundle — names an event the log no longer holds,
	// or holds with another hash: the log was cut back or rewritten.
	ProblemWitness = "witness"
	// ProblemDamaged: the database fails its integrity check, or the log
	// cannot be read.
	ProblemDamaged = "damaged"
	// ProblemIdentity: the database is not the data directory's own.
	ProblemIdentity = "identity"
)

// Audit is the result of verifying the event log.
type Audit struct {
	// Events is how many events the log holds.
	Events int `json:"events"`
	// HeadSeq and Head are the Seq and hash of the newest event as recorded
	// by the chain head: export them to detect a wholesale rewrite later.
	HeadSeq int64  `json:"headSeq"`
	Head    string `json:"head"`
	// Witnesses is how many heads recorded outside the database were
	// compared with the log; Superseded how many were not, because they
	// were written before the last recovery replaced the log they name.
	Witnesses  int       `json:"witnesses"`
	Superseded int       `json:"superseded,omitempty"`
	Problems   []Problem `json:"problems"`
}

// OK reports whether the log verified clean.
func (a Audit) OK() bool { return len(a.Problems) == 0 }

// Problem is one thing wrong with the event log.
type Problem struct {
	Seq     int64  `json:"seq"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Witness is a head of the log recorded outside the database: the
// anchor file, or the head an incident bundle was written at.
type Witness struct {
	Name string `json:"name"`
	Head
	// Written is when the witness was recorded; zero when unknown. A
	// witness written before the last recovery (`lastgood restore`) names
	// the log that recovery replaced, and is not held against the new one.
	Written time.Time `json:"written,omitempty"`
}

// recoveryTypes are the events a recovery command records.
var recoveryTypes = map[string]bool{"store.restored": true, "store.accepted": true, "store.fresh": true}

// Verify checks the database's integrity (PRAGMA quick_check), re-hashes
// the whole event log from one consistent snapshot, and reports every
// edit, gap, reordering and head mismatch it finds, and every witness —
// those given, and for a data directory's store its anchor file — that
// names an event the log does not hold as recorded. Witnesses must be
// read before Verify is called: a head written after its snapshot would
// look like a missing tail. An error means the check could not run; what
// it found is in Audit.Problems.
func (s *Store) Verify(ctx context.Context, witnesses ...Witness) (Audit, error) {
	var a Audit
	var problems []Problem
	for _, d := range quickCheck(ctx, s.db) {
		problems = append(problems, Problem{Kind: ProblemDamaged, Message: "state.db: " + d})
	}
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		problems = append(problems, Problem{Kind: ProblemDamaged, Message: fmt.Sprintf("state.db: %v", err)})
	}
	empty := version == 0 && len(problems) == 0
	if empty {
		problems = append(problems, Problem{Kind: ProblemDamaged, Message: "state.db is empty: it holds no tables and no events"})
	}
	if s.dir != "" {
		ws, ps := s.dirWitnesses(ctx, empty)
		witnesses = append(ws, witnesses...)
		problems = append(problems, ps...)
	}
	if empty {
		a = audit(nil, chainHead{hash: genesisHash})
		a.Witnesses = len(witnesses)
		a.Problems = append(append(a.Problems, problems...), checkWitnesses(nil, witnesses)...)
		return a, nil
	}
	recs, head, err := s.readLog(ctx)
	if err != nil {
		if len(problems) == 0 {
			return Audit{}, err
		}
		a.Problems = append(problems, Problem{Kind: ProblemDamaged, Message: fmt.Sprintf("the event log cannot be read: %v", err)})
		return a, nil
	}
	a = audit(recs, head)
	witnesses, a.Superseded = current(recs, witnesses)
	a.Witnesses = len(witnesses)
	a.Problems = append(a.Problems, problems...)
	a.Problems = append(a.Problems, checkWitnesses(recs, witnesses)...)
	sort.SliceStable(a.Problems, func(i, j int) bool { return a.Problems[i].Seq < a.Problems[j].Seq })
	if a.Problems == nil {
		a.Problems = []Problem{}
	}
	return a, nil
}

// readLog reads every event and the chain head in one snapshot.
func (s *Store) readLog(ctx context.Context) ([]record, chainHead, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chainHead{}, fmt.Errorf("verify event log: %w", err)
	}
	defer tx.Rollback()
	var head chainHead
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&head.seq, &head.hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		head.missing = true
	case err != nil:
		return nil, chainHead{}, fmt.Errorf("verify event log: read chain head: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM events ORDER BY seq`)
	if err != nil {
		return nil, chainHead{}, fmt.Errorf("verify event log: %w", err)
	}
	recs, err := collect(rows, scanRecord)
	if err != nil {
		return nil, chainHead{}, fmt.Errorf("verify event log: %w", err)
	}
	return recs, head, nil
}

// dirWitnesses reads the anchor of the store's data directory and checks
// that the database is the directory's own.
func (s *Store) dirWitnesses(ctx context.Context, empty bool) ([]Witness, []Problem) {
	var ws []Witness
	var ps []Problem
	a, err := readAnchor(filepath.Join(s.dir, AnchorFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ps = append(ps, Problem{Kind: ProblemWitness, Message: AnchorFile + " is missing: a cut-back log cannot be ruled out"})
	case err != nil:
		ps = append(ps, Problem{Kind: ProblemWitness, Message: err.Error()})
	default:
		ws = append(ws, Witness{Name: AnchorFile, Head: a.Head})
	}
	m, err := readMarker(s.dir)
	if err != nil {
		ps = append(ps, Problem{Kind: ProblemIdentity, Message: fmt.Sprintf("%s: %v", MarkerFile, err)})
		return ws, ps
	}
	if empty {
		ps = append(ps, Problem{Kind: ProblemIdentity, Message: fmt.Sprintf("the data directory is %s (created %s), but state.db records no identity: its state was lost",
			m.ID, m.Created.UTC().Format(time.RFC3339))})
		return ws, ps
	}
	id, err := s.identity(ctx)
	switch {
	case err != nil:
		ps = append(ps, Problem{Kind: ProblemIdentity, Message: err.Error()})
	case id != m.ID:
		ps = append(ps, Problem{Kind: ProblemIdentity, Message: fmt.Sprintf("state.db records identity %q, but the data directory is %s", id, m.ID)})
	case a.Store != "" && a.Store != m.ID:
		ps = append(ps, Problem{Kind: ProblemIdentity, Message: fmt.Sprintf("%s belongs to data directory %s, but this one is %s", AnchorFile, a.Store, m.ID)})
	}
	return ws, ps
}

// current drops the witnesses written before the log's last recovery
// event, and counts them.
func current(recs []record, ws []Witness) ([]Witness, int) {
	var last time.Time
	for _, r := range recs {
		if recoveryTypes[r.typ] {
			if t, err := parseTime(r.time); err == nil && t.After(last) {
				last = t
			}
		}
	}
	if last.IsZero() {
		return ws, 0
	}
	var out []Witness
	for _, w := range ws {
		if !w.Written.IsZero() && w.Written.Before(last) {
			continue
		}
		out = append(out, w)
	}
	return out, len(ws) - len(out)
}

// checkWitnesses reports every witness whose event the log, recs sorted
// by seq, does not hold with the witnessed hash.
func checkWitnesses(recs []record, ws []Witness) []Problem {
	var ps []Problem
	var last int64
	if n := len(recs); n > 0 {
		last = recs[n-1].seq
	}
	for _, w := range ws {
		if w.Seq == 0 {
			continue
		}
		i := sort.Search(len(recs), func(i int) bool { return recs[i].seq >= w.Seq })
		switch {
		case w.Seq > last:
			ps = append(ps, Problem{Seq: w.Seq, Kind: ProblemWitness, Message: fmt.Sprintf(
				"%s names event %d, but the log ends at event %d: the newest %d events are gone (state.db was cut back or replaced)",
				w.Name, w.Seq, last, w.Seq-last)})
		case i == len(recs) || recs[i].seq != w.Seq:
			ps = append(ps, Problem{Seq: w.Seq, Kind: ProblemWitness, Message: fmt.Sprintf("%s names event %d, which is not in the log", w.Name, w.Seq)})
		case recs[i].hash != w.Hash:
			ps = append(ps, Problem{Seq: w.Seq, Kind: ProblemWitness, Message: fmt.Sprintf(
				"%s recorded event %d with hash %s, but the log holds %s: the log was rewritten from there on", w.Name, w.Seq, w.Hash, recs[i].hash)})
		}
	}
	return ps
}

// chainHead is the stored chain_head row.
type chainHead struct {
	seq     int64
	hash    string
	missing bool
}

// audit checks recs, sorted by seq, against each other and against head.
func audit(recs []record, head chainHead) Audit {
	a := Audit{Events: len(recs), HeadSeq: head.seq, Head: head.hash}
	if head.missing && len(recs) > 0 {
		last := recs[len(recs)-1]
		a.HeadSeq, a.Head = last.seq, last.hash
	}
	c := newChecker(recs)
	c.checkRows()
	c.checkHead(head)
	sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Seq < c.problems[j].Seq })
	a.Problems = c.problems
	return a
}
