package strategy

import (
	"fmt"
	"time"
)

// RollBack ends the rollout by returning all traffic to From. trigger says
// what decided it (TriggerProgressDeadline, TriggerRestart, a check name …)
// and reason why, in words.
func RollBack(spec Spec, s State, now time.Time, trigger, reason string) (State, []Event) {
	s = end(spec, s, now, RolledBack, trigger, reason)
	msg := fmt.Sprintf("rolled back to revision %d: %s", s.From, reason)
	if s.From == 0 {
		msg = fmt.Sprintf("revision %d failed and nothing was serving before it: %s", s.To, reason)
	}
	return s, []Event{{Type: "rollout.rolled-back", Message: msg}}
}

// Abort ends the rollout by hand, returning all traffic to From.
func Abort(spec Spec, s State, now time.Time) (State, []Event, error) {
	if s.Phase.Final() {
		return s, nil, ErrFinished
	}
	s = end(spec, s, now, Aborted, TriggerAbort, "aborted by `lastgood abort`")
	return s, []Event{{Type: "rollout.aborted", Message: fmt.Sprintf("aborted: all traffic back on revision %d", s.From)}}, nil
}

func end(spec Spec, s State, now time.Time, phase Phase, trigger, reason string) State {
	s.Phase, s.PauseReason = phase, ""
	s.Trigger, s.Reason = trigger, reason
	s.Ended = now
	s.Weight = 0
	s.ToReplicas = 0
	if s.From > 0 && s.FromReplicas < s.fromTarget(spec) {
		s.FromReplicas = s.fromTarget(spec)
	}
	return s
}

// fromTarget is how many replicas of From a rollback restores. Rolling
// rollouts shrink From, so they return it to the new spec's count; the
// other kinds never shrink it.
func (s State) fromTarget(spec Spec) int {
	if s.Kind == Rolling {
		return spec.Replicas
	}
	return s.FromReplicas
}

// Promote skips the current wait: a blue-green rollout switches as soon as
// its replicas are ready; a canary leaves its current step, or with full
// goes straight to the final scale-up. A manual pause ends too.
func Promote(spec Spec, s State, now time.Time, full bool) (State, []Event, error) {
	if s.Phase.Final() {
		return s, nil, ErrFinished
	}
	ev := []Event{{Type: "rollout.promote", Message: "promote requested"}}
	if s.Phase == Paused && s.PauseReason == PauseUnhealthy {
		s.HoldOverridden = true // a person decided: lastgood does not hold it again
	}
	if s.Phase == Paused && (s.PauseReason == PauseManual || s.PauseReason == PauseUnhealthy) {
		s = resume(s, now)
	}
	switch s.Kind {
	case BlueGreen, Undo:
		s.PromoteRequested = true
		if s.Phase == Paused {
			s.Phase, s.PauseReason = Progressing, ""
		}
	case Canary:
		s.Phase, s.PauseReason = Progressing, ""
		if full {
			s.Step = len(spec.Strategy.Canary.Steps)
		} else if s.Step < len(spec.Strategy.Canary.Steps) {
			s.Step++
		}
		s.StepStarted, s.Progressed = now, now
	default:
		return s, nil, fmt.Errorf("%w: a %s rollout replaces replicas as they become ready", ErrNoPromote, s.Kind)
	}
	return s, ev, nil
}

// Pause stops a rollout where it stands: traffic stays as it is and the
// progress deadline stops counting until Resume.
func Pause(s State, now time.Time) (State, []Event, error) {
	if s.Phase.Final() {
		return s, nil, ErrFinished
	}
	if s.Phase == Paused && s.PauseReason == PauseManual {
		return s, nil, nil
	}
	s.Phase, s.PauseReason, s.PausedAt = Paused, PauseManual, now
	return s, []Event{{Type: "rollout.paused", Message: "paused by `lastgood pause`"}}, nil
}

// Resume continues a rollout paused by Pause, or held for an unhealthy
// target (which is then not held again); the time spent paused does not
// count against a timed step or the progress deadline.
func Resume(s State, now time.Time) (State, []Event, error) {
	if s.Phase.Final() {
		return s, nil, ErrFinished
	}
	if s.Phase != Paused || s.PauseReason != PauseManual && s.PauseReason != PauseUnhealthy {
		return s, nil, ErrNotPaused
	}
	msg := "resumed by `lastgood resume`"
	if s.PauseReason == PauseUnhealthy {
		s.HoldOverridden = true
		msg += fmt.Sprintf(" although revision %d is unhealthy (%s); it is not held again", s.From, s.TargetTrouble)
	}
	return resume(s, now), []Event{{Type: "rollout.resumed", Message: msg}}, nil
}

func resume(s State, now time.Time) State {
	paused := now.Sub(s.PausedAt)
	s.StepStarted = s.StepStarted.Add(paused)
	s.Progressed = s.Progressed.Add(paused)
	s.Phase, s.PauseReason, s.PausedAt = Progressing, "", time.Time{}
	return s
}
