package store

import "fmt"

// checker holds what verifying one snapshot of the log needs.
type checker struct {
	recs   []record
	byHash map[string]int // stored hash -> index in recs
	// inPlace[i]: recs[i] hashes correctly at its own seq with its own link.
	inPlace []bool
	// origin[i]: the seq at which recs[i] hashes correctly, 0 if none.
	origin   []int64
	flagged  []bool
	problems []Problem
}

func newChecker(recs []record) *checker {
	c := &checker{
		recs:    recs,
		byHash:  make(map[string]int, len(recs)),
		inPlace: make([]bool, len(recs)),
		origin:  make([]int64, len(recs)),
		flagged: make([]bool, len(recs)),
	}
	for i, r := range recs {
		c.byHash[r.hash] = i
		if chainHash(r.prevHash, r) == r.hash {
			c.inPlace[i] = true
			c.origin[i] = r.seq
		}
	}
	for i := range recs {
		c.resolve(i)
	}
	return c
}

// resolve finds the seq at which a displaced row's content hashes
// correctly: one past the seq of the event its PrevHash names (or 1 for
// the genesis hash). It walks back along PrevHash links without recursion,
// then settles the rows it passed from the oldest forward.
func (c *checker) resolve(i int) {
	var path []int
	seen := map[int]bool{}
	for c.origin[i] == 0 && !seen[i] {
		seen[i] = true
		path = append(path, i)
		j, ok := c.byHash[c.recs[i].prevHash]
		if !ok {
			break
		}
		i = j
	}
	for k := len(path) - 1; k >= 0; k-- {
		r := c.recs[path[k]]
		var at int64
		if r.prevHash == genesisHash {
			at = 1
		} else if j, ok := c.byHash[r.prevHash]; ok && c.origin[j] != 0 {
			at = c.origin[j] + 1
		} else {
			continue
		}
		moved := r
		moved.seq = at
		if chainHash(r.prevHash, moved) == r.hash {
			c.origin[path[k]] = at
		}
	}
}

func (c *checker) report(i int, seq int64, kind, format string, args ...any) {
	if i >= 0 {
		c.flagged[i] = true
	}
	c.problems = append(c.problems, Problem{Seq: seq, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// checkRows reports edited and displaced rows, gaps in Seq and broken links.
func (c *checker) checkRows() {
	for i, r := range c.recs {
		switch {
		case c.inPlace[i]:
		case c.origin[i] != 0:
			c.report(i, r.seq, ProblemReordered,
				"event %d: holds the intact content of event %d (events were reordered or renumbered)", r.seq, c.origin[i])
		default:
			c.report(i, r.seq, ProblemEdited, "event %d: content was edited (hash mismatch)", r.seq)
		}
	}
	var prev int64 // seq of the row before, 0 at the start
	for i, r := range c.recs {
		switch {
		case r.seq > prev+1 && prev == 0:
			c.reportGap(1, r.seq-1, fmt.Sprintf("the log starts at event %d", r.seq))
		case r.seq > prev+1:
			c.reportGap(prev+1, r.seq-1, fmt.Sprintf("the log skips from event %d to event %d", prev, r.seq))
		}
		if c.inPlace[i] {
			c.checkLink(i)
		}
		prev = r.seq
	}
}

// checkLink checks that an intact row links to the row before it.
func (c *checker) checkLink(i int) {
	r := c.recs[i]
	if r.seq == 1 {
		if r.prevHash != genesisHash {
			c.report(i, r.seq, ProblemEdited, "event 1: does not start the chain (its previous hash is not zeros)")
		}
		return
	}
	if i == 0 || c.recs[i-1].seq != r.seq-1 || c.flagged[i-1] {
		return // the event before is missing or already reported
	}
	if r.prevHash != c.recs[i-1].hash {
		c.report(i-1, r.seq-1, ProblemEdited,
			"event %d: was rewritten with a recomputed hash (event %d links to a different hash)", r.seq-1, r.seq)
	}
}

func (c *checker) reportGap(from, to int64, why string) {
	if from == to {
		c.report(-1, from, ProblemMissing, "event %d is missing (deleted): %s", from, why)
		return
	}
	c.report(-1, from, ProblemMissing, "events %d to %d are missing (deleted): %s", from, to, why)
}

// checkHead compares the chain head record with the last row.
func (c *checker) checkHead(head chainHead) {
	var lastSeq int64
	lastHash, lastFlagged := genesisHash, false
	if n := len(c.recs); n > 0 {
		lastSeq, lastHash, lastFlagged = c.recs[n-1].seq, c.recs[n-1].hash, c.flagged[n-1]
	}
	switch {
	case head.missing:
		c.report(-1, lastSeq, ProblemHead, "the chain head record is missing, so deletions at the end of the log cannot be ruled out")
	case head.seq > lastSeq:
		c.reportGap(lastSeq+1, head.seq,
			fmt.Sprintf("the chain head records %d events but the log ends at event %d", head.seq, lastSeq))
	case head.seq < lastSeq:
		c.report(-1, lastSeq, ProblemHead,
			"event %d: the chain head stops at event %d (events were added behind lastgood's back)", lastSeq, head.seq)
	case head.hash != lastHash && !lastFlagged:
		c.report(-1, lastSeq, ProblemHead,
			"event %d: its hash differs from the one the chain head records (the event or the head was rewritten)", lastSeq)
	}
}
