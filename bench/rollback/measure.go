package main

import (
	"encoding/json"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/judge"
)

// measured is one round as the load's responses and lastgood's events
// show it.
type measured struct {
	round
	// Seen reports that the canary answered at all; without it the
	// times below are zero.
	Seen bool
	// FaultStart is the first answer from the canary, Back the last one
	// (requests in flight at the switch back still complete).
	FaultStart, Back time.Time
	ToRollback       time.Duration // Back − FaultStart
	// Canary and CanaryFailed are the blast radius: answers from the
	// canary, and those of them that were not 200.
	Canary, CanaryFailed int
	// Stable and StableFailed are the answers from the stable revision
	// while the round ran (apply → end of the settle pause).
	Stable, StableFailed int
	// NoAnswer are requests of the round with no HTTP answer (none is
	// expected).
	NoAnswer int
	// Other are answers from neither revision (the router's own, with no
	// Lastgood-Revision header); none is expected.
	Other int
	// From lastgood's events (its clock, the same machine's):
	Weighted    time.Time       // traffic.weight: the canary got its 20%
	FailVerdict time.Time       // the first failing verdict of the check
	RolledBack  time.Time       // rollout.rolled-back
	Verdict     analysis.Result // that verdict with its evidence
	VerdictMsg  string          // the verdict event's message
	RolledMsg   string          // the rolled-back event's message
}

// Derived spans of a measured round. The failing look is the check's own
// time for its verdict; the verdict event carries the time of the
// controller's tick that recorded it, the same as the rolled-back event's.
func (m measured) detect() time.Duration { return m.Verdict.At.Sub(m.FaultStart) } // first canary answer → failing look
func (m measured) act() time.Duration    { return m.RolledBack.Sub(m.Verdict.At) } // failing look → rolled back
func (m measured) backVsEvent() time.Duration {
	return m.Back.Sub(m.RolledBack) // last canary answer − rolled-back event
}

// measureRounds reads each round out of the load's responses and the
// round's events.
// stable is the stable revision's number.
func measureRounds(run harness.LoadRun, rounds []round, stable int) []measured {
	out := make([]measured, len(rounds))
	byRev := map[int]*measured{}
	for i, rd := range rounds {
		out[i] = measured{round: rd}
		byRev[rd.Revision] = &out[i]
		readEvents(&out[i])
	}
	for _, x := range run.Responses {
		done := run.Time(x.Done)
		if m := byRev[x.Revision]; m != nil && x.Status != 0 {
			if !m.Seen || done.Before(m.FaultStart) {
				m.FaultStart = done
			}
			if !m.Seen || done.After(m.Back) {
				m.Back = done
			}
			m.Seen = true
			m.Canary++
			if x.Failed() {
				m.CanaryFailed++
			}
			continue
		}
		m := roundAt(out, done)
		if m == nil {
			continue
		}
		switch {
		case x.Status == 0:
			m.NoAnswer++
		case x.Revision == stable:
			m.Stable++
			if x.Failed() {
				m.StableFailed++
			}
		default:
			m.Other++
		}
	}
	for i := range out {
		if out[i].Seen {
			out[i].ToRollback = out[i].Back.Sub(out[i].FaultStart)
		}
	}
	return out
}

// roundAt returns the round whose apply → settled span holds t.
func roundAt(ms []measured, t time.Time) *measured {
	for i := range ms {
		if !t.Before(ms[i].Applied) && t.Before(ms[i].Settled) {
			return &ms[i]
		}
	}
	return nil
}

// readEvents takes the times and the explanation out of the round's
// events.
func readEvents(m *measured) {
	if e, ok := m.event("traffic.weight"); ok {
		m.Weighted = e.Time
	}
	if e, ok := m.event("rollout.rolled-back"); ok {
		m.RolledBack, m.RolledMsg = e.Time, e.Message
	}
	for _, e := range m.Events {
		if e.Type != "analysis.verdict" {
			continue
		}
		var res analysis.Result
		if json.Unmarshal(e.Data, &res) == nil && res.Verdict == judge.Fail {
			m.Verdict, m.VerdictMsg = res, e.Message
			return
		}
	}
}
