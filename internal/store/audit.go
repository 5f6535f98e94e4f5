package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
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
)

// Audit is the result of verifying the event log.
type Audit struct {
	// Events is how many events the log holds.
	Events int `json:"events"`
	// HeadSeq and Head are the Seq and hash of the newest event as recorded
	// by the chain head: export them to detect a wholesale rewrite later.
	HeadSeq  int64     `json:"headSeq"`
	Head     string    `json:"head"`
	Problems []Problem `json:"problems"`
}

// OK reports whether the log verified clean.
func (a Audit) OK() bool { return len(a.Problems) == 0 }

// Problem is one thing wrong with the event log.
type Problem struct {
	Seq     int64  `json:"seq"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Verify re-hashes the whole event log, from one consistent snapshot, and
// reports every edit, gap, reordering and head mismatch it finds. An error
// means the log could not be read; problems found are in Audit.Problems.
func (s *Store) Verify(ctx context.Context) (Audit, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Audit{}, fmt.Errorf("verify event log: %w", err)
	}
	defer tx.Rollback()
	var head chainHead
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&head.seq, &head.hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		head.missing = true
	case err != nil:
		return Audit{}, fmt.Errorf("verify event log: read chain head: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM events ORDER BY seq`)
	if err != nil {
		return Audit{}, fmt.Errorf("verify event log: %w", err)
	}
	recs, err := collect(rows, scanRecord)
	if err != nil {
		return Audit{}, fmt.Errorf("verify event log: %w", err)
	}
	return audit(recs, head), nil
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
