package strategy

import (
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// Start returns the state of a new rollout from revision from (0 for none)
// to revision to. fromReplicas is how many replicas of from run now.
func Start(kind string, spec Spec, from, to, fromReplicas int, now time.Time) State {
	if from == 0 {
		kind = Initial
	}
	s := State{
		Kind:         kind,
		From:         from,
		To:           to,
		Phase:        Progressing,
		StepStarted:  now,
		FromReplicas: fromReplicas,
		Progressed:   now,
		Started:      now,
	}
	switch kind {
	case Initial, BlueGreen, Undo:
		s.ToReplicas = spec.Replicas
	}
	return s
}

// Next advances s by what obs shows and returns the new state with the
// events of the transitions it made. It is called on every controller tick
// and after every replica change; calling it again with the same
// observation changes nothing.
func Next(spec Spec, s State, obs Observation) (State, []Event) {
	next, ev := step(spec, s, obs)
	if next.Phase == RolledBack && s.Phase != RolledBack {
		next, ev = returnTo(spec, s, next, obs, ev) // every rollback checks where it returns to
	}
	return next, ev
}

func step(spec Spec, s State, obs Observation) (State, []Event) {
	var ev []Event
	if s.Phase.Final() {
		if InWindow(s, obs.Now) && judged(s) {
			s = countRestarts(s, obs.To)
			if obs.To.Ready > 0 {
				s.Recovered = time.Time{} // the readiness grace ends with the first ready replica
			}
			if rb, ev := windowRollBack(spec, s, obs); rb.Phase != s.Phase {
				return rb, ev
			}
		}
		if s.Phase == Promoted && s.FromReplicas > 0 && !obs.Now.Before(s.WarmUntil) {
			s.FromReplicas = 0
			msg := fmt.Sprintf("rollback window ended: revision %d stopped", s.From)
			if s.Holdback > 0 {
				msg += fmt.Sprintf("; the %d%% held back on it moves to revision %d", s.Holdback, s.To)
			}
			ev = append(ev, Event{Type: "rollout.window-ended", Message: msg})
		}
		return watchTarget(spec, s, obs, ev)
	}
	if judged(s) {
		s = countRestarts(s, obs.To)
		if trigger, reason, data := failure(s, obs); trigger != "" {
			s, ev = RollBack(spec, s, obs.Now, trigger, reason)
			ev[0].Data = data
			return s, ev
		}
	}
	if held, hev := hold(s, obs); len(hev) > 0 {
		return held, hev
	}
	if s.Phase == Paused {
		return s, nil
	}
	ready := min(obs.To.Ready, s.ToReplicas)
	if ready > s.LastReady {
		s.LastReady, s.Progressed = ready, obs.Now
	}
	switch s.Kind {
	case Initial, Rolling:
		s, ev = nextRolling(spec, s, obs)
	case BlueGreen, Undo:
		s, ev = nextBlueGreen(spec, s, obs)
	case Canary:
		s, ev = seeTraffic(s, obs)
		var cev []Event
		s, cev = nextCanary(spec, s, obs)
		ev = append(ev, cev...)
	}
	if !s.Phase.Final() && s.Phase != Paused && awaitingReplicas(spec, s, obs) &&
		obs.Now.Sub(s.Progressed) > spec.ProgressDeadline {
		reason := fmt.Sprintf("revision %d: %d of %d replicas ready after %s without progress",
			s.To, min(obs.To.Ready, s.ToReplicas), s.ToReplicas, spec.ProgressDeadline)
		var rb []Event
		s, rb = RollBack(spec, s, obs.Now, TriggerProgressDeadline, reason)
		ev = append(ev, rb...)
	}
	return s, ev
}

// awaitingReplicas reports whether the rollout waits for replicas of To to
// become ready, the only wait the progress deadline bounds.
func awaitingReplicas(spec Spec, s State, obs Observation) bool {
	if s.Kind == Rolling || s.Kind == Initial {
		return obs.To.Ready < s.ToReplicas || s.FromReplicas > 0
	}
	return obs.To.Ready < s.ToReplicas
}

// judged reports whether a rollout's new revision is judged by its checks
// and its replicas' health: a first release has nothing to return to. An
// undo is judged like any promotion: a failure returns to the revision
// that served before it.
func judged(s State) bool {
	return s.From > 0 && s.Kind != Initial
}

func nextBlueGreen(spec Spec, s State, obs Observation) (State, []Event) {
	if obs.To.Ready < spec.Replicas {
		return s, nil
	}
	gated := s.Kind == BlueGreen || s.Kind == Undo && !s.Instant
	if gated && !s.PromoteRequested && !checked(spec, obs, s.Progressed) {
		return s, nil // every check looks at the ready revision once before the switch
	}
	auto := s.Kind == Undo || spec.Strategy.BlueGreen == nil || spec.Strategy.BlueGreen.AutoPromotes()
	if !auto && !s.PromoteRequested {
		s.Phase, s.PauseReason, s.PausedAt = Paused, PausePromote, obs.Now
		return s, []Event{{Type: "rollout.paused", Message: fmt.Sprintf("revision %d is ready; waiting for `lastgood promote`", s.To)}}
	}
	return promote(spec, s, obs.Now)
}

// promote switches the traffic to To and keeps From warm for the window,
// with spec.Holdback percent of the traffic still on it when the rollout
// is judged: the concurrent baseline of its compare checks.
func promote(spec Spec, s State, now time.Time) (State, []Event) {
	s.Weight = 100
	s.ToReplicas = spec.Replicas
	s.Phase, s.PauseReason = Promoted, ""
	s.Ended = now
	s.WarmUntil = now.Add(spec.Window)
	s.PromotedRestarts = s.Restarts
	if s.Kind == Rolling || s.Kind == Initial || spec.Window == 0 {
		s.FromReplicas = 0
	}
	// An undo holds nothing back: its user asked to leave the revision it
	// replaces, so no share of the traffic stays there; its compare checks
	// have no concurrent baseline in the window (the others still judge).
	if s.FromReplicas > 0 && judged(s) && s.Kind != Undo && spec.Holdback > 0 {
		s.Holdback = spec.Holdback
	}
	msg := fmt.Sprintf("revision %d promoted: all traffic on revision %d", s.To, s.To)
	switch {
	case s.Holdback > 0:
		msg = fmt.Sprintf("revision %d promoted: %d%% of traffic on revision %d; revision %d stays warm with %d%% held back until %s (rollback.holdback: the checks keep comparing both)",
			s.To, 100-s.Holdback, s.To, s.From, s.Holdback, s.WarmUntil.UTC().Format(time.RFC3339))
	case s.FromReplicas > 0:
		msg += fmt.Sprintf("; revision %d stays warm until %s", s.From, s.WarmUntil.UTC().Format(time.RFC3339))
	}
	return s, []Event{{Type: "rollout.promoted", Message: msg}}
}

func nextRolling(spec Spec, s State, obs Observation) (State, []Event) {
	n := spec.Replicas
	surge, unavailable := 1, 0
	if r := spec.Strategy.Rolling; r != nil && s.Kind == Rolling {
		surge, unavailable = Resolve(r.MaxSurge, n, true), Resolve(r.MaxUnavailable, n, false)
		if surge == 0 && unavailable == 0 {
			surge = 1
		}
	}
	oldReady := min(obs.From.Ready, s.FromReplicas)
	newReady := min(obs.To.Ready, s.ToReplicas)
	var ev []Event

	// Scale the new revision up within the surge.
	if want := min(n, max(s.ToReplicas, n+surge-s.FromReplicas)); want > s.ToReplicas {
		ev = append(ev, Event{Type: "rollout.step", Message: fmt.Sprintf("revision %d scaled to %d of %s", s.To, want, replicas(n))})
		s.ToReplicas = want
	}
	// Scale the old revision down as far as availability allows: its
	// unready replicas first, then ready ones as new ones became ready.
	if s.FromReplicas > 0 {
		unready := s.FromReplicas - oldReady
		removeReady := max(0, min(oldReady, oldReady+newReady-(n-unavailable)))
		if remove := unready + removeReady; remove > 0 {
			s.FromReplicas -= remove
			s.Progressed = obs.Now
			ev = append(ev, Event{Type: "rollout.step", Message: fmt.Sprintf("revision %d scaled down to %s", s.From, replicas(s.FromReplicas))})
		}
	}
	if s.FromReplicas == 0 && newReady >= n {
		var p []Event
		s, p = promote(spec, s, obs.Now)
		ev = append(ev, p...)
	}
	return s, ev
}

// Resolve turns maxSurge or maxUnavailable into a replica count, rounding
// a surge up and an unavailability down, as Kubernetes does.
func Resolve(v manifest.IntOrPercent, replicas int, roundUp bool) int {
	if !v.Percent {
		return v.Value
	}
	x := v.Value * replicas
	if roundUp {
		return (x + 99) / 100
	}
	return x / 100
}

func nextCanary(spec Spec, s State, obs Observation) (State, []Event) {
	steps := spec.Strategy.Canary.Steps
	var ev []Event
	for range len(steps) + 1 {
		if s.Step >= len(steps) {
			s.ToReplicas = spec.Replicas
			if obs.To.Ready < spec.Replicas {
				return s, ev
			}
			s, p := promote(spec, s, obs.Now)
			return s, append(ev, p...)
		}
		st := steps[s.Step]
		switch {
		case st.SetWeight != nil:
			w := *st.SetWeight
			want := canaryReplicas(spec.Replicas, w)
			s.ToReplicas = max(s.ToReplicas, want)
			if obs.To.Ready < want {
				return s, ev
			}
			s.Weight = w
			ev = append(ev, Event{Type: "traffic.weight", Message: fmt.Sprintf("step %d: %d%% of traffic on revision %d", s.Step+1, w, s.To)})
		case st.Pause != nil && st.Pause.For == 0:
			if s.Phase != Paused {
				s.Phase, s.PauseReason, s.PausedAt = Paused, PausePromote, obs.Now
				ev = append(ev, Event{Type: "rollout.paused", Message: fmt.Sprintf("step %d: paused until `lastgood promote`", s.Step+1)})
			}
			return s, ev
		case st.Pause != nil:
			if obs.Now.Before(s.StepStarted.Add(st.Pause.For.D())) {
				return s, ev
			}
		case st.Analyze != nil:
			next, aev, done := analyze(spec, s, obs, st.Analyze.For.D(), st.Analyze.MaxWait.D())
			s, ev = next, append(ev, aev...)
			if !done {
				return s, ev
			}
		}
		s.Step++
		s.StepStarted, s.Progressed = obs.Now, obs.Now
	}
	return s, ev
}

// canaryReplicas is how many replicas of the canary carry weight w of n:
// at least one for any positive weight.
func canaryReplicas(n, w int) int {
	if w <= 0 {
		return 0
	}
	return max(1, (n*w+99)/100)
}

func replicas(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}
