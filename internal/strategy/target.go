package strategy

import (
	"fmt"
	"strings"
	"time"
)

// A rollback is only as good as the revision it returns to, and a
// comparison only as good as its baseline. So lastgood checks From, the
// stable revision a rollback returns to, before and after every rollback
// and all through a canary or blue-green rollout:
//
//   - its ready replicas: none ready at the moment of a rollback, or none
//     for the progress deadline after it;
//   - its restarts since the rollout began: CrashLoopRestarts of them, the
//     rule the new revision is held to;
//   - its error rate since the rollout began against its own history
//     (Observation.Health, an anytime-valid one-sample test).
//
// A canary or blue-green rollout whose target is found unhealthy is held
// (Paused, PauseUnhealthy), never promoted: its checks compared it with a
// failing baseline. When the new revision is degraded against the same
// history too, both degraded together, which points at the environment or
// a dependency rather than the release. The checks keep running while it
// is held, so a failure still rolls back; `lastgood resume` or `promote`
// goes on (and the rollout is not held again), `lastgood abort` returns.
// A rollback to an unhealthy target still happens — the new revision was
// shown to fail — and says so. Each finding is one rollout.target-unhealthy
// event per rollout.

// Both is what the verdict says when both revisions degraded together.
const Both = "both revisions degraded together: likely an environment or dependency failure, not this release"

// TargetReport is the data of a rollout.target-unhealthy event.
type TargetReport struct {
	Revision int    `json:"revision"` // the revision a rollback returns (or returned) to
	Trouble  string `json:"trouble"`
	// Both says the new revision degraded too.
	Both bool `json:"both"`
	// When is "rollout" (the rollout was held), "rollback" (found at the
	// rollback) or "after-rollback".
	When string `json:"when"`
}

// trouble says what is wrong with From at obs.Now, "" when nothing.
// noneReady says whether no ready replica counts as trouble now.
func trouble(s State, obs Observation, noneReady bool) string {
	if s.From == 0 {
		return ""
	}
	var out []string
	if noneReady && obs.From.Ready == 0 {
		out = append(out, fmt.Sprintf("no replica of revision %d is ready", s.From))
	}
	if n := obs.From.Restarts - s.FromRestartsBefore; n >= CrashLoopRestarts {
		out = append(out, fmt.Sprintf("revision %d's replicas restarted %d times since the rollout began; the last one %s", s.From, n, lastExit(obs.From.LastExit)))
	}
	if obs.Health.From != "" {
		out = append(out, fmt.Sprintf("revision %d's %s", s.From, obs.Health.From))
	}
	return strings.Join(out, "; ")
}

// holds reports whether a rollout of kind is held while its target is
// unhealthy: those that compare the new revision with the stable. A
// rolling update replaces the stable, and an undo's target is the
// revision being taken out.
func holds(kind string) bool { return kind == Canary || kind == BlueGreen }

// hold pauses a rollout in progress whose target is unhealthy, and says
// so again, once, if the new revision degrades too while it is held. It
// returns no event when nothing changed.
func hold(s State, obs Observation) (State, []Event) {
	held := s.Phase == Paused && s.PauseReason == PauseUnhealthy
	if !holds(s.Kind) || s.HoldOverridden || s.Phase == Paused && !held && s.PauseReason != PausePromote {
		return s, nil
	}
	if held {
		if s.TargetBoth || obs.Health.To == "" {
			return s, nil
		}
		s.TargetBoth = true
		return s, []Event{{Type: "rollout.target-unhealthy",
			Message: fmt.Sprintf("%s: revision %d's %s, while revision %d is unhealthy: %s", Both, s.To, obs.Health.To, s.From, s.TargetTrouble),
			Data:    TargetReport{Revision: s.From, Trouble: s.TargetTrouble, Both: true, When: "rollout"}}}
	}
	t := trouble(s, obs, false)
	if t == "" {
		return s, nil
	}
	both := obs.Health.To != ""
	msg := fmt.Sprintf("revision %d, the one a rollback would return to, is unhealthy: %s", s.From, t)
	if both {
		msg = fmt.Sprintf("%s: revision %d's %s, and %s", Both, s.To, obs.Health.To, msg)
	}
	s.Phase, s.PauseReason, s.PausedAt = Paused, PauseUnhealthy, obs.Now
	s.TargetTrouble, s.TargetBoth = t, both
	return s, []Event{
		{Type: "rollout.target-unhealthy", Message: msg, Data: TargetReport{Revision: s.From, Trouble: t, Both: both, When: "rollout"}},
		{Type: "rollout.paused", Message: fmt.Sprintf("held: revision %d is not promoted while revision %d, its baseline, is unhealthy; `lastgood resume` goes on, `lastgood abort` returns to revision %d",
			s.To, s.From, s.From)},
	}
}

// returnTo checks the target of a rollback decided by Next: prev is the
// state before it, s after. A target found unhealthy is said in the
// rollback's reason and its event, and raised once as
// rollout.target-unhealthy.
func returnTo(spec Spec, prev, s State, obs Observation, ev []Event) (State, []Event) {
	t := trouble(prev, obs, prev.FromReplicas > 0)
	if t == "" {
		return s, ev
	}
	note := fmt.Sprintf("%s (revision %d, returned to, is unhealthy too: %s)", Both, s.From, t)
	s.Reason += "; " + note
	for i := range ev {
		if ev[i].Type == "rollout.rolled-back" {
			ev[i].Message += "; " + note
		}
	}
	if s.TargetTrouble != "" {
		return s, ev
	}
	s.TargetTrouble = t
	return s, append(ev, Event{Type: "rollout.target-unhealthy",
		Message: fmt.Sprintf("rolled back to revision %d, which is itself unhealthy: %s", s.From, t),
		Data:    TargetReport{Revision: s.From, Trouble: t, Both: true, When: "rollback"}})
}

// WatchesTarget reports whether the target's health matters at now: while
// the rollout runs, and for the longer of the rollback window and the
// progress deadline after a rollback or abort.
func WatchesTarget(spec Spec, s State, now time.Time) bool {
	switch s.Phase {
	case Promoted:
		return InWindow(s, now)
	case RolledBack, Aborted:
		return now.Before(s.Ended.Add(max(spec.Window, spec.ProgressDeadline)))
	}
	return s.From > 0
}

// watchTarget keeps watching the target after a rollback or abort, for
// the longer of the rollback window and the progress deadline, and raises
// rollout.target-unhealthy once when it fails.
func watchTarget(spec Spec, s State, obs Observation, ev []Event) (State, []Event) {
	if s.Phase != RolledBack && s.Phase != Aborted || s.From == 0 || s.TargetTrouble != "" || !WatchesTarget(spec, s, obs.Now) {
		return s, ev
	}
	since := s.Ended
	if obs.Watching.After(since) {
		since = obs.Watching
	}
	t := trouble(s, obs, obs.Now.Sub(since) >= spec.ProgressDeadline)
	if t == "" {
		return s, ev
	}
	s.TargetTrouble = t
	return s, append(ev, Event{Type: "rollout.target-unhealthy",
		Message: fmt.Sprintf("revision %d, back in service since %s, is unhealthy: %s", s.From, s.Ended.UTC().Format(time.RFC3339), t),
		Data:    TargetReport{Revision: s.From, Trouble: t, When: "after-rollback"}})
}
