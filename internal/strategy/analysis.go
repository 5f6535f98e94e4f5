package strategy

import (
	"fmt"
	"strings"
	"time"
)

// failure returns why the new revision must be rolled back now, judging
// from the checks and the replicas: a failed check, or a crash loop. An
// empty trigger means nothing is wrong. It applies to a rollout in
// progress (paused or not) and, after promotion, during the rollback
// window.
func failure(s State, obs Observation) (trigger, reason string, data any) {
	for _, c := range obs.Checks {
		if c.Verdict == Fail {
			return TriggerAnalysis, fmt.Sprintf("check %s failed: %s", c.Name, c.Reason), c
		}
	}
	if obs.To.Restarts >= CrashLoopRestarts {
		trigger = TriggerCrashLoop
		if strings.Contains(obs.To.LastExit, "liveness") {
			trigger = TriggerLiveness
		}
		reason = fmt.Sprintf("revision %d's replicas restarted %d times; the last one %s", s.To, obs.To.Restarts, lastExit(obs.To.LastExit))
		return trigger, reason, nil
	}
	return "", "", nil
}

func lastExit(e string) string {
	if e == "" {
		return "exited"
	}
	if strings.HasPrefix(e, "exit status") || strings.HasPrefix(e, "signal") {
		return "ended with " + e
	}
	return "was " + e
}

// InWindow reports whether s is a promoted rollout whose rollback window is
// open at now: the previous revision still runs and checks stay armed.
func InWindow(s State, now time.Time) bool {
	return s.Phase == Promoted && s.FromReplicas > 0 && s.From > 0 && now.Before(s.WarmUntil)
}

// Analyzing reports whether the rollout's checks should be running at now:
// while a rollout with something to return to is in progress, and through
// its rollback window after promotion.
func Analyzing(spec Spec, s State, now time.Time) bool {
	if spec.Checks == 0 || s.From == 0 || s.Kind == Initial || s.Kind == Undo {
		return false
	}
	return !s.Phase.Final() || InWindow(s, now)
}

// windowRollBack returns traffic to the still-warm previous revision when
// the promoted revision fails inside the rollback window.
func windowRollBack(spec Spec, s State, obs Observation) (State, []Event) {
	if !s.Restarted.IsZero() && obs.To.Ready > 0 {
		s.Restarted = time.Time{} // back after a restart: judged as before
	}
	trigger, reason, data := failure(s, obs)
	starting := !s.Restarted.IsZero() && obs.Now.Sub(s.Restarted) <= spec.ProgressDeadline
	if trigger == "" && obs.To.Ready == 0 && !starting {
		trigger = TriggerReadiness
		reason = fmt.Sprintf("no replica of revision %d is ready", s.To)
		if !s.Restarted.IsZero() {
			reason += fmt.Sprintf(" %s after lastgood restarted", spec.ProgressDeadline)
		}
	}
	if trigger == "" {
		return s, nil
	}
	s.Restarted = time.Time{}
	reason += fmt.Sprintf(" (%s after promotion, inside the rollback window)", obs.Now.Sub(s.Ended).Round(time.Millisecond))
	s, ev := RollBack(spec, s, obs.Now, trigger, reason)
	s.InWindow = true
	ev[0].Data = data
	return s, ev
}

// lacking names the checks without enough data for an analyze step to end.
func lacking(spec Spec, obs Observation) []string {
	var out []string
	seen := 0
	for _, c := range obs.Checks {
		seen++
		if !c.Data {
			out = append(out, c.Name)
		}
	}
	if seen < spec.Checks {
		out = append(out, fmt.Sprintf("%d not looked at yet", spec.Checks-seen))
	}
	return out
}

// analyze decides an analyze step at obs.Now: done reports whether the
// rollout may go on to the next step; a rollback, when the checks lacked
// data at maxWait and onNoData is fail, comes back as a final state.
func analyze(spec Spec, s State, obs Observation, for_, maxWait time.Duration) (State, []Event, bool) {
	if obs.Now.Before(s.StepStarted.Add(for_)) {
		return s, nil, false
	}
	missing := lacking(spec, obs)
	if len(missing) == 0 {
		s.NoDataWait = false
		return s, []Event{{Type: "analysis.passed", Message: fmt.Sprintf("step %d: %s", s.Step+1, passedWhat(obs.Checks))}}, true
	}
	if maxWait < for_ {
		maxWait = 3 * for_
	}
	if obs.Now.Before(s.StepStarted.Add(maxWait)) {
		return s, nil, false
	}
	what := fmt.Sprintf("step %d: after %s, not enough data from %s", s.Step+1, maxWait, strings.Join(missing, ", "))
	switch spec.OnNoData {
	case NoDataPass:
		s.NoDataWait = false
		return s, []Event{{Type: "analysis.no-data", Message: what + "; onNoData: pass, going on"}}, true
	case NoDataFail:
		s, ev := RollBack(spec, s, obs.Now, TriggerNoData, what+" (onNoData: fail)")
		return s, ev, false
	}
	if s.NoDataWait {
		return s, nil, false
	}
	s.NoDataWait = true
	return s, []Event{{Type: "analysis.no-data", Message: what + "; onNoData: wait, analyzing until there is"}}, false
}

// checked reports whether every check has been looked at since since (the
// moment a blue-green revision became ready) and none failed: the gate
// before a blue-green switch.
func checked(spec Spec, obs Observation, since time.Time) bool {
	n := 0
	for _, c := range obs.Checks {
		if !c.At.Before(since) {
			n++
		}
	}
	return n >= spec.Checks
}

// passedWhat says what an analyze step that ends has shown: which checks
// passed and which are still inconclusive. An inconclusive check has seen
// no evidence of harm on a real sample, which is not evidence of none:
// its test goes on through the later steps and the rollback window.
func passedWhat(checks []Check) string {
	var passed, open []string
	for _, c := range checks {
		if c.Verdict == Pass {
			passed = append(passed, c.Name)
		} else {
			open = append(open, c.Name)
		}
	}
	if len(open) == 0 {
		return "every check passed"
	}
	msg := "no check failed"
	if len(passed) > 0 {
		msg += "; passed: " + strings.Join(passed, ", ")
	}
	return msg + "; not shown within tolerance yet, judging on (through the rollback window): " + strings.Join(open, ", ")
}
