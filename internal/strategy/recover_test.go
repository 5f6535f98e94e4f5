package strategy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func TestReadinessGrace(t *testing.T) {
	probe := func(delay, period time.Duration, fail, success int) *manifest.Probe {
		return &manifest.Probe{InitialDelay: manifest.Duration(delay), Period: manifest.Duration(period),
			FailureThreshold: fail, SuccessThreshold: success}
	}
	for _, tc := range []struct {
		name     string
		probe    *manifest.Probe
		deadline time.Duration
		want     time.Duration
	}{
		{"default probe", probe(0, time.Second, 3, 1), 2 * time.Minute, 14 * time.Second},
		{"initial delay and thresholds", probe(5*time.Second, 2*time.Second, 5, 2), 2 * time.Minute, 29 * time.Second},
		{"bounded by the progress deadline", probe(0, 10*time.Second, 10, 1), time.Minute, time.Minute},
		{"a short deadline", probe(0, 100*time.Millisecond, 2, 1), 3 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &manifest.App{Probes: manifest.Probes{Readiness: tc.probe},
				Rollback: manifest.Rollback{ProgressDeadline: manifest.Duration(tc.deadline)}}
			if got := ReadinessGrace(a); got != tc.want {
				t.Fatalf("grace = %s, want %s", got, tc.want)
			}
		})
	}
}

// promotedBlueGreen returns a blue-green rollout of 2 replicas promoted at
// t0 with one check, its window open for a minute.
func promotedBlueGreen(t *testing.T) (Spec, State) {
	t.Helper()
	spec := blueGreen(true)
	spec.Checks, spec.ReadinessGrace = 1, 5*time.Second
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	ready := Count{Running: 2, Ready: 2}
	s, _ = Next(spec, s, Observation{Now: t0, From: ready, To: ready, Checks: []Check{{Name: "errors", Verdict: Inconclusive, At: t0}}})
	if s.Phase != Promoted || !InWindow(s, t0) {
		t.Fatalf("not promoted inside the window: %+v", s)
	}
	return spec, s
}

func TestRecoverDecidesEveryRollout(t *testing.T) {
	spec, promoted := promotedBlueGreen(t)
	progressing := Start(Canary, canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}), 1, 2, 2, t0)
	paused := Start(BlueGreen, spec, 1, 2, 2, t0)
	paused.Phase, paused.PauseReason = Paused, PausePromote
	first := Start(BlueGreen, spec, 0, 1, 0, t0)
	undone := promoted
	undone.Kind = Undo
	rolledBack, _ := RollBack(spec, progressing, t0, TriggerAnalysis, "check failed")
	restart := t0.Add(10 * time.Second)
	for _, tc := range []struct {
		name    string
		s       State
		phase   Phase
		trigger string
		events  []string // nil: no decision
		message string   // in the controller.recovered event
	}{
		{"first release resumes", first, Progressing, "", []string{EventRecovered}, "resuming it"},
		{"canary in progress rolls back", progressing, RolledBack, TriggerRestart, []string{EventRecovered, "rollout.rolled-back"}, "rolling back to revision 1"},
		{"blue-green waiting for promote rolls back", paused, RolledBack, TriggerRestart, []string{EventRecovered, "rollout.rolled-back"}, "rolling back to revision 1"},
		{"promoted inside the window stays promoted", promoted, Promoted, "", []string{EventRecovered}, "it stays promoted, and its window starts again: revision 1 is warm again"},
		{"undo inside the window stays promoted", undone, Promoted, "", []string{EventRecovered}, "it stays promoted"},
		{"rolled back: nothing to decide", rolledBack, RolledBack, TriggerAnalysis, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ev := Recover(spec, tc.s, restart)
			if s.Phase != tc.phase || s.Trigger != tc.trigger {
				t.Fatalf("phase %s trigger %q, want %s %q", s.Phase, s.Trigger, tc.phase, tc.trigger)
			}
			if !slices.Equal(types(ev), tc.events) {
				t.Fatalf("events %v, want %v", types(ev), tc.events)
			}
			if tc.events != nil && !strings.Contains(ev[0].Message, tc.message) {
				t.Fatalf("message %q does not say %q", ev[0].Message, tc.message)
			}
		})
	}
	// Inside the window, the window starts again at the restart.
	if s, _ := Recover(spec, promoted, restart); s.WarmUntil != restart.Add(spec.Window) || !InWindow(s, restart.Add(spec.Window-time.Millisecond)) {
		t.Fatalf("window after a restart ends at %s, want %s", s.WarmUntil, restart.Add(spec.Window))
	}
	// A holdback ends at the restart: the compare checks it served are not
	// armed again, so all traffic goes to the promoted revision, and the
	// event says so.
	held := promoted
	held.Holdback = 10
	s, ev := Recover(spec, held, restart)
	if p := Desired(s); s.Holdback != 0 || p.Holdback != 0 || p.Weights[2] != 100 || p.Weights[1] != 0 || p.Replicas[1] == 0 {
		t.Fatalf("holdback after a restart: state %d, plan %+v; want none, revision 1 warm without traffic", s.Holdback, p)
	}
	if !strings.Contains(ev[0].Message, "the 10% held back on revision 1 moves to revision 2") || !strings.Contains(ev[0].Message, "not re-armed") {
		t.Fatalf("recovered event %q does not say the holdback ends and the checks are not re-armed", ev[0].Message)
	}
	// After the window has ended, a promoted rollout needs no decision.
	if s, ev := Recover(spec, promoted, promoted.WarmUntil); s != promoted || ev != nil {
		t.Fatalf("recovered after the window: %+v %v", s, types(ev))
	}
}

// TestWindowAfterARestart replays looks at a promoted rollout after
// lastgood restarted 10 s into its window: the replicas the new process
// starts get their readiness grace, and restarts count across the restart.
func TestWindowAfterARestart(t *testing.T) {
	spec, promoted := promotedBlueGreen(t)
	restart := t0.Add(10 * time.Second)
	at := func(d time.Duration) time.Time { return restart.Add(d) }
	type look struct {
		at time.Time
		to Count
	}
	starting, ready := Count{Running: 2}, Count{Running: 2, Ready: 2}
	for _, tc := range []struct {
		name string
		// before adjusts the rollout before the restart (restarts seen by
		// the process that was killed).
		before  func(State) State
		looks   []look
		trigger string // "" stays promoted
		reason  string
		events  []string
	}{
		{name: "starting inside the grace", looks: []look{{at(0), starting}, {at(4 * time.Second), starting}}},
		{name: "ready inside the grace", looks: []look{{at(time.Second), starting}, {at(2 * time.Second), ready}, {at(20 * time.Second), ready}}},
		{name: "never ready: readiness after the grace, naming the restart",
			looks:   []look{{at(time.Second), starting}, {at(5 * time.Second), starting}},
			trigger: TriggerReadiness, reason: "no replica of revision 2 is ready 5s after lastgood restarted (readiness grace 5s)",
			events: []string{EventRecovered, "rollout.rolled-back"}},
		{name: "ready once, then none: the grace is over",
			looks:   []look{{at(time.Second), ready}, {at(2 * time.Second), Count{Running: 2, Restarts: 0}}},
			trigger: TriggerReadiness, reason: "no replica of revision 2 is ready (", events: []string{"rollout.rolled-back"}},
		{name: "one restart before and one after the restart make two",
			before:  func(s State) State { s.Restarts, s.RestartsSeen = 1, 1; return s },
			looks:   []look{{at(time.Second), ready}, {at(2 * time.Second), Count{Running: 2, Ready: 2, Restarts: 1, LastExit: "exit status 1"}}},
			trigger: TriggerCrashLoop, reason: "restarted 2 times since promotion (it has 2 replicas); the last one ended with exit status 1",
			events: []string{"rollout.rolled-back"}},
		{name: "restarts before promotion do not count in the window",
			before: func(s State) State { s.Restarts, s.PromotedRestarts, s.RestartsSeen = 1, 1, 1; return s },
			looks:  []look{{at(time.Second), ready}, {at(2 * time.Second), Count{Running: 2, Ready: 2, Restarts: 1}}}},
		{name: "liveness kills",
			looks:   []look{{at(time.Second), Count{Running: 2, Ready: 2, Restarts: 2, LastExit: "signal: killed; killed after failing its liveness probe"}}},
			trigger: TriggerLiveness, reason: "since promotion", events: []string{"rollout.rolled-back"}},
		{name: "every replica restarted, none seen down",
			looks:   []look{{at(time.Second), ready}, {at(2 * time.Second), Count{Running: 2, Ready: 2, Restarts: 1}}, {at(3 * time.Second), Count{Running: 2, Ready: 2, Restarts: 2}}},
			trigger: TriggerCrashLoop, reason: "restarted 2 times since promotion", events: []string{"rollout.rolled-back"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := promoted
			if tc.before != nil {
				s = tc.before(s)
			}
			s, ev := Recover(spec, s, restart)
			if s.RestartsSeen != 0 || s.Recovered != restart {
				t.Fatalf("recovered state %+v", s)
			}
			var last []Event
			for _, l := range tc.looks {
				obs := Observation{Now: l.at, From: ready, To: l.to}
				if s, last = Next(spec, s, obs); s.Phase != Promoted {
					break
				}
			}
			ev = last
			if tc.trigger == "" {
				if s.Phase != Promoted {
					t.Fatalf("rolled back: %s (%s)", s.Reason, s.Trigger)
				}
				return
			}
			if s.Phase != RolledBack || s.Trigger != tc.trigger || !s.InWindow || !strings.Contains(s.Reason, tc.reason) {
				t.Fatalf("phase %s trigger %q inWindow %v reason %q; want %q with %q", s.Phase, s.Trigger, s.InWindow, s.Reason, tc.trigger, tc.reason)
			}
			if !slices.Equal(types(ev), tc.events) {
				t.Fatalf("events %v, want %v", types(ev), tc.events)
			}
			if p := Desired(s); p.Weights[1] != 100 || p.Replicas[2] != 0 {
				t.Fatalf("plan %+v", p)
			}
		})
	}
}

// TestWindowRestartsDoNotDependOnLooks rolls back a promoted revision whose
// replicas each restart once, whatever the looks saw of their readiness,
// for any number of replicas.
func TestWindowRestartsDoNotDependOnLooks(t *testing.T) {
	for _, replicas := range []int{1, 2, 3, 5} {
		spec := blueGreen(true)
		spec.Replicas = replicas
		s := Start(BlueGreen, spec, 1, 2, replicas, t0)
		all := Count{Running: replicas, Ready: replicas}
		s, _ = Next(spec, s, Observation{Now: t0, From: all, To: all})
		if s.Phase != Promoted {
			t.Fatalf("%d replicas: not promoted: %+v", replicas, s)
		}
		want := min(replicas, CrashLoopRestarts)
		for n := 1; n <= want; n++ {
			obs := Observation{Now: t0.Add(time.Duration(n) * time.Second), From: all, To: Count{Running: replicas, Ready: replicas, Restarts: n}}
			s, _ = Next(spec, s, obs)
			if rolledBack := s.Phase == RolledBack; rolledBack != (n == want) {
				t.Fatalf("%d replicas, %d restarts: phase %s (%s)", replicas, n, s.Phase, s.Reason)
			}
		}
		if s.Trigger != TriggerCrashLoop || !s.InWindow {
			t.Fatalf("%d replicas: %+v", replicas, s)
		}
	}
}

// TestRestartsAreCountedOnce checks the bookkeeping of the engine's
// restart count: the same observation twice, a count that falls (replicas
// stopped, or a new engine) and rises again.
func TestRestartsAreCountedOnce(t *testing.T) {
	for _, tc := range []struct {
		seen []int
		want int
	}{
		{[]int{0, 1, 1, 2}, 2},
		{[]int{2, 0, 1}, 3},
		{[]int{3, 1, 1, 2}, 4},
		{nil, 0},
	} {
		var s State
		for _, n := range tc.seen {
			s = countRestarts(s, Count{Restarts: n})
		}
		if s.Restarts != tc.want {
			t.Errorf("seen %v: %d restarts, want %d", tc.seen, s.Restarts, tc.want)
		}
	}
}

// TestReadinessInsideTheWindowNeedsAReadyWarmRevision keeps a promoted
// revision with no ready replica while the warm revision has none either
// (a starved machine times every probe out): rolling back would not serve
// anyone. Once the warm revision is ready, the rule applies.
func TestReadinessInsideTheWindowNeedsAReadyWarmRevision(t *testing.T) {
	spec, s := promotedBlueGreen(t)
	none := Count{Running: 2}
	s, _ = Next(spec, s, Observation{Now: t0.Add(time.Second), From: none, To: none})
	if s.Phase != Promoted {
		t.Fatalf("rolled back to a revision with no ready replica: %+v", s)
	}
	s, _ = Next(spec, s, Observation{Now: t0.Add(2 * time.Second), From: Count{Running: 2, Ready: 1}, To: none})
	if s.Phase != RolledBack || s.Trigger != TriggerReadiness {
		t.Fatalf("not rolled back once the warm revision was ready: %+v", s)
	}
}
