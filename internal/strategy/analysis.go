package strategy

import (
	"fmt"
	"strings"
	"time"
)

// failure returns why the new revision must be rolled back now, judging
// from the checks and the replicas: a failed check, a replica that can
// never start, or a crash loop (the restarts of s, which the caller has
// brought up to date with countRestarts). An empty trigger means nothing
// is wrong. It applies to a rollout in progress (paused or not) and, after
// promotion, during the rollback window.
func failure(s State, obs Observation) (trigger, reason string, data any) {
	for _, c := range obs.Checks {
		if c.Verdict == Fail {
			return TriggerAnalysis, fmt.Sprintf("check %s failed: %s", c.Name, c.Reason), c
		}
	}
	if obs.To.Unrunnable != "" {
		return TriggerUnrunnable, fmt.Sprintf("revision %d cannot run: %s", s.To, obs.To.Unrunnable), nil
	}
	if s.Restarts >= CrashLoopRestarts {
		reason = fmt.Sprintf("revision %d's replicas restarted %d times; the last one %s", s.To, s.Restarts, lastExit(obs.To.LastExit))
		return exitTrigger(obs.To.LastExit), reason, nil
	}
	return "", "", nil
}

// exitTrigger is the trigger of a rollback for replicas that keep
// exiting: liveness when the last one was killed for failing its liveness
// probe, else crashLoop.
func exitTrigger(lastExit string) string {
	if strings.Contains(lastExit, "liveness") {
		return TriggerLiveness
	}
	return TriggerCrashLoop
}

// countRestarts adds the restarts of To's replicas that obs shows and s
// has not counted. The engine's count only grows while the same replicas
// run; when it falls (lastgood restarted, or replicas that had restarted
// were stopped) it is the new baseline.
func countRestarts(s State, to Count) State {
	if n := to.Restarts - s.RestartsSeen; n > 0 {
		s.Restarts += n
	}
	s.RestartsSeen = to.Restarts
	return s
}

// WindowRestarts is how many restarts of the promoted revision's
// replicas since promotion roll it back inside the rollback window: as
// many as it has replicas (each could have died once), and never more than
// CrashLoopRestarts. A count, unlike "no replica is ready", does not
// depend on a look landing while every replica is down.
func WindowRestarts(spec Spec) int {
	return max(1, min(spec.Replicas, CrashLoopRestarts))
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
	if spec.Checks == 0 || s.From == 0 || s.Kind == Initial {
		return false
	}
	return !s.Phase.Final() || InWindow(s, now)
}

// windowRollBack returns traffic to the still-warm previous revision when
// the promoted revision fails inside the rollback window: a failed check,
// a crash loop, WindowRestarts restarts since promotion, or no ready
// replica while the warm revision has one — except, after a restart of
// lastgood, while the replicas it started again are within their
// readiness grace.
func windowRollBack(spec Spec, s State, obs Observation) (State, []Event) {
	var ev []Event
	trigger, reason, data := failure(s, obs)
	if n := s.Restarts - s.PromotedRestarts; trigger == "" && n >= WindowRestarts(spec) {
		trigger = exitTrigger(obs.To.LastExit)
		reason = fmt.Sprintf("revision %d's replicas restarted %d times since promotion (it has %s); the last one %s",
			s.To, n, replicas(spec.Replicas), lastExit(obs.To.LastExit))
	}
	if trigger == "" && obs.To.Ready == 0 {
		if graced(spec, s, obs.Now) || obs.From.Ready == 0 {
			// starting again after a restart; or the warm revision could
			// not serve either (a starved machine times both out): moving
			// traffic there would trade 503s for 503s
			return s, nil
		}
		trigger = TriggerReadiness
		reason = fmt.Sprintf("no replica of revision %d is ready", s.To)
		if !s.Recovered.IsZero() {
			reason += fmt.Sprintf(" %s after lastgood restarted (readiness grace %s)", obs.Now.Sub(s.Recovered).Round(time.Millisecond), spec.ReadinessGrace)
			ev = append(ev, Event{Type: EventRecovered, Message: fmt.Sprintf(
				"revision %d's replicas did not become ready within the readiness grace of %s after lastgood restarted: rolling back to revision %d",
				s.To, spec.ReadinessGrace, s.From)})
		}
	}
	if trigger == "" {
		return s, nil
	}
	reason += fmt.Sprintf(" (%s after promotion, inside the rollback window)", obs.Now.Sub(s.Ended).Round(time.Millisecond))
	s, rb := RollBack(spec, s, obs.Now, trigger, reason)
	s.InWindow = true
	rb[0].Data = data
	return s, append(ev, rb...)
}

// graced reports whether lastgood restarted inside s's window so recently
// that To's replicas, started again, may still be on their way to ready.
func graced(spec Spec, s State, now time.Time) bool {
	return !s.Recovered.IsZero() && now.Before(s.Recovered.Add(spec.ReadinessGrace))
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
	s, ev := noTraffic(s, obs, for_, missing)
	if maxWait < for_ {
		maxWait = 3 * for_
	}
	deadline := quietTooLong(spec, s, obs)
	if obs.Now.Before(s.StepStarted.Add(maxWait)) && !deadline {
		return s, ev, false
	}
	what := fmt.Sprintf("step %d: after %s, not enough data from %s", s.Step+1, maxWait, strings.Join(missing, ", "))
	if deadline {
		what = fmt.Sprintf("step %d: no traffic to revision %d for %s (the progress deadline), not enough data from %s",
			s.Step+1, s.To, spec.ProgressDeadline, strings.Join(missing, ", "))
	}
	switch {
	case spec.OnNoData == NoDataPass:
		s.NoDataWait = false
		return s, append(ev, Event{Type: "analysis.no-data", Message: what + "; onNoData: pass, going on"}), true
	case spec.OnNoData == NoDataFail:
		s, rb := RollBack(spec, s, obs.Now, TriggerNoData, what+" (onNoData: fail)")
		return s, append(ev, rb...), false
	case deadline:
		// waiting for data that no request brings would wait forever
		s, rb := RollBack(spec, s, obs.Now, TriggerProgressDeadline, what+" (onNoData: wait ends at the progress deadline when the new revision takes no traffic)")
		return s, append(ev, rb...), false
	}
	if s.NoDataWait {
		return s, ev, false
	}
	s.NoDataWait = true
	return s, append(ev, Event{Type: "analysis.no-data", Message: what + "; onNoData: wait, analyzing until there is"}), false
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
