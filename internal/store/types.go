package store

import (
	"encoding/json"
	"time"
)

// App is a named service lastgood delivers.
type App struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	// Stable is the revision that last completed a rollout; 0 means none.
	Stable int `json:"stable"`
	// Latest is the highest revision number ever created for the app. It
	// never decreases, so revision numbers are never reused, even after
	// pruning. CreateRevision maintains it; PutApp ignores it.
	Latest  int       `json:"latest"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Deleted is when `lastgood delete` removed the app, nil while it
	// lives. A deleted app keeps its revisions, rollouts and events; a
	// later PutApp brings it back.
	Deleted *time.Time `json:"deleted,omitempty"`
}

// Revision origins.
const (
	OriginApply = "apply"
	OriginUndo  = "undo"
)

// Revision is an immutable, numbered snapshot of an app.
type Revision struct {
	App    string `json:"app"`
	Number int    `json:"number"`
	// Digest is "sha256:…" of the revision's content (manifest and artifacts).
	Digest string `json:"digest"`
	// Manifest is the canonical manifest JSON.
	Manifest json.RawMessage `json:"manifest"`
	// Source is the manifest file as the user gave it.
	Source string `json:"source"`
	// Artifacts maps each artifact path as written in the manifest to the
	// digest of its stored copy.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Origin is OriginApply or OriginUndo.
	Origin string `json:"origin"`
	// CopyOf is, for an undo, the revision whose content this one copies.
	CopyOf  int       `json:"copyOf,omitempty"`
	Created time.Time `json:"created"`
}

// Rollout phases.
const (
	PhaseProgressing = "progressing"
	PhasePaused      = "paused"
	PhasePromoted    = "promoted"
	PhaseRolledBack  = "rolled-back"
	PhaseAborted     = "aborted"
)

// Rollout is one attempt to move an app from its stable revision to a new one.
type Rollout struct {
	ID  int64  `json:"id"`
	App string `json:"app"`
	// Number counts the app's rollouts: 1 for its first, 2 for its second
	// … (ID counts every app's). It names the rollout's incident.
	Number   int    `json:"number"`
	From     int    `json:"from"`
	To       int    `json:"to"`
	Strategy string `json:"strategy"`
	// Phase is one of the Phase constants.
	Phase string `json:"phase"`
	Step  int    `json:"step"`
	// State is the strategy's own state; the store does not look inside.
	State   json.RawMessage `json:"state,omitempty"`
	Trigger string          `json:"trigger"`
	Reason  string          `json:"reason,omitempty"`
	Started time.Time       `json:"started"`
	Updated time.Time       `json:"updated"`
	Ended   *time.Time      `json:"ended,omitempty"`
}

// Done reports whether the rollout has ended: promoted, rolled back or aborted.
func (r Rollout) Done() bool { return phaseDone(r.Phase) }

func phaseDone(phase string) bool {
	return phase == PhasePromoted || phase == PhaseRolledBack || phase == PhaseAborted
}

func validPhase(phase string) bool {
	return phase == PhaseProgressing || phase == PhasePaused || phaseDone(phase)
}

// Event is one entry of the append-only, hash-chained event log.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	App      string          `json:"app,omitempty"`
	Rollout  int64           `json:"rollout,omitempty"`
	Revision int             `json:"revision,omitempty"`
	Type     string          `json:"type"`
	Message  string          `json:"message"`
	Data     json.RawMessage `json:"data,omitempty"`
	// Actor is who asked for what the event records: the name of the API
	// token of a manual action ("anonymous" when lastgood has no tokens),
	// "" for what lastgood did by itself.
	Actor string `json:"actor,omitempty"`
	// PrevHash is the Hash of the event before; 64 zeros for the first.
	PrevHash string `json:"prevHash"`
	Hash     string `json:"hash"`
}

// EventQuery selects events. Zero fields do not filter; Limit 0 means all.
type EventQuery struct {
	App      string
	Rollout  int64
	AfterSeq int64
	Limit    int
}

// timeText is how the store writes times: RFC 3339 with nanoseconds, in UTC.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// now is the current time as the store keeps it: UTC, without the
// monotonic reading, so a value read back compares equal to the one written.
func now() time.Time { return time.Now().UTC().Round(0) }
