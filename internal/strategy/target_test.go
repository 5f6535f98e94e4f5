package strategy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// The target of a rollback (target.go): held rollouts, rollbacks to an
// unhealthy revision, and the watch after a rollback.

func eventOf(ev []Event, typ string) *Event {
	for i := range ev {
		if ev[i].Type == typ {
			return &ev[i]
		}
	}
	return nil
}

func TestUnhealthyTargetHoldsTheRollout(t *testing.T) {
	crashing := Count{Running: 2, Ready: 1, Restarts: CrashLoopRestarts + 4, LastExit: "exit status 1"}
	for _, tc := range []struct {
		name  string
		from  Count
		h     Health
		held  bool
		both  bool
		words string
	}{
		{"healthy", Count{Running: 2, Ready: 2, Restarts: 4}, Health{}, false, false, ""},
		{"restarted before the rollout only", Count{Running: 2, Ready: 2, Restarts: 4}, Health{}, false, false, ""},
		{"two restarts since", Count{Running: 2, Ready: 2, Restarts: 4 + CrashLoopRestarts - 1}, Health{}, false, false, ""},
		{"crash loop", crashing, Health{}, true, false, "revision 1's replicas restarted 3 times since the rollout began; the last one ended with exit status 1"},
		{"error rate", Count{Running: 2, Ready: 2, Restarts: 4}, Health{From: "error rate 9% above its history"}, true, false, "revision 1's error rate 9% above its history"},
		{"the canary alone", Count{Running: 2, Ready: 2, Restarts: 4}, Health{To: "error rate 3%"}, false, false, ""},
		{"both", Count{Running: 2, Ready: 2, Restarts: 4}, Health{From: "error rate 9%", To: "error rate 8%"}, true, true, Both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(30, 90), manifest.Step{SetWeight: ptr(50)})
			s, obs := canaryAt(t, spec)
			s.FromRestartsBefore = 4
			obs.Now = t0.Add(31 * time.Second)
			obs.From, obs.Health = tc.from, tc.h
			obs.To.Requests = 500
			obs.Checks = looks(obs.Now, Inconclusive, Inconclusive, true) // enough data to go on
			next, ev := Next(spec, s, obs)
			if !tc.held {
				if next.Phase != Progressing || next.Step < 2 || eventOf(ev, "rollout.target-unhealthy") != nil {
					t.Fatalf("not held, want it to go on: %+v %v", next, types(ev))
				}
				return
			}
			if next.Phase != Paused || next.PauseReason != PauseUnhealthy || next.Step != 1 {
				t.Fatalf("want held at step 2: %+v", next)
			}
			e := eventOf(ev, "rollout.target-unhealthy")
			if e == nil || eventOf(ev, "rollout.paused") == nil || !strings.Contains(e.Message, tc.words) {
				t.Fatalf("events %+v, want target-unhealthy saying %q and paused", ev, tc.words)
			}
			if r := e.Data.(TargetReport); r.Revision != 1 || r.Both != tc.both || r.When != "rollout" || next.TargetTrouble != r.Trouble {
				t.Fatalf("report %+v, state's trouble %q", r, next.TargetTrouble)
			}
			// Held, it is never promoted, however long it waits …
			for _, at := range []time.Duration{time.Minute, time.Hour} {
				obs.Now = t0.Add(at)
				again, ev := Next(spec, next, obs)
				if again.Phase != Paused || len(ev) != 0 {
					t.Fatalf("after %s: %+v %v", at, again, types(ev))
				}
			}
			// … and when the new revision degrades too, that is said once.
			if !tc.both {
				worse := obs
				worse.Health.To = "error rate 40%"
				both, ev := Next(spec, next, worse)
				e := eventOf(ev, "rollout.target-unhealthy")
				if both.Phase != Paused || !both.TargetBoth || e == nil || !strings.HasPrefix(e.Message, Both+": revision 2's error rate 40%, while revision 1 is unhealthy: ") || !e.Data.(TargetReport).Both {
					t.Fatalf("the canary degraded too: %+v %+v", both, ev)
				}
				if _, ev := Next(spec, both, worse); len(ev) != 0 {
					t.Fatalf("said again: %v", types(ev))
				}
			}
			// … while a failed check still rolls it back, saying both failed.
			obs.Checks = looks(obs.Now, Fail, Inconclusive, true)
			rb, ev := Next(spec, next, obs)
			if rb.Phase != RolledBack || !strings.Contains(rb.Reason, Both) || eventOf(ev, "rollout.target-unhealthy") != nil {
				t.Fatalf("a failed check while held: %+v %v (the target was already reported)", rb, types(ev))
			}
			// A person resuming it takes responsibility: it goes on and is
			// not held again.
			obs.Checks = looks(obs.Now, Inconclusive, Inconclusive, true)
			resumed, rev, err := Resume(next, obs.Now)
			if err != nil || resumed.Phase != Progressing || !strings.Contains(rev[0].Message, "not held again") {
				t.Fatalf("resume: %v %+v %v", err, resumed, rev)
			}
			on, ev := Next(spec, resumed, obs)
			if on.Phase != Progressing || on.Step < 2 || eventOf(ev, "rollout.target-unhealthy") != nil {
				t.Fatalf("resumed: %+v %v", on, types(ev))
			}
			// promote does the same.
			promoted, _, err := Promote(spec, next, obs.Now, true)
			if err != nil || promoted.Phase != Progressing || !promoted.HoldOverridden {
				t.Fatalf("promote of a held rollout: %v %+v", err, promoted)
			}
		})
	}
}

func TestOnlyComparingRolloutsAreHeld(t *testing.T) {
	crashing := Count{Running: 2, Ready: 2, Restarts: CrashLoopRestarts}
	for _, kind := range []string{Undo, Rolling} {
		spec := blueGreen(true)
		if kind == Rolling {
			spec.Strategy = manifest.Strategy{Rolling: &manifest.Rolling{}}
		}
		s := Start(kind, spec, 1, 2, 2, t0)
		next, ev := Next(spec, s, Observation{Now: t0, From: crashing, To: Count{Running: 2}})
		if next.Phase == Paused || eventOf(ev, "rollout.target-unhealthy") != nil {
			t.Errorf("%s rollout held: %+v %v", kind, next, types(ev))
		}
	}
	// A manual pause stays a manual pause; a wait for `promote` is held.
	spec := blueGreen(false)
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	ready := Count{Running: 2, Ready: 2}
	s, _ = Next(spec, s, Observation{Now: t0, From: ready, To: ready})
	if s.Phase != Paused || s.PauseReason != PausePromote {
		t.Fatalf("not waiting for promote: %+v", s)
	}
	held, ev := Next(spec, s, Observation{Now: t0, From: crashing, To: ready})
	if held.PauseReason != PauseUnhealthy || eventOf(ev, "rollout.target-unhealthy") == nil {
		t.Fatalf("waiting for promote, not held: %+v %v", held, types(ev))
	}
	manual, _, _ := Pause(Start(BlueGreen, spec, 1, 2, 2, t0), t0)
	if again, ev := Next(spec, manual, Observation{Now: t0, From: crashing, To: ready}); again.PauseReason != PauseManual || len(ev) != 0 {
		t.Fatalf("manual pause: %+v %v", again, types(ev))
	}
}

func TestRollbackToAnUnhealthyTargetSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		from    Count
		h       Health
		trouble string
	}{
		{"healthy", Count{Running: 2, Ready: 2}, Health{}, ""},
		{"none ready", Count{Running: 2}, Health{}, "no replica of revision 1 is ready"},
		{"crash loop", Count{Running: 2, Ready: 1, Restarts: 3, LastExit: "exit status 2"}, Health{}, "restarted 3 times"},
		{"error rate", Count{Running: 2, Ready: 2}, Health{From: "error rate 40%"}, "revision 1's error rate 40%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := blueGreen(true)
			spec.Checks = 1
			s := Start(Undo, spec, 1, 3, 2, t0) // no holds: the target is only checked at the rollback
			obs := Observation{Now: t0.Add(time.Second), From: tc.from, Health: tc.h, To: Count{Running: 2, Ready: 2},
				Checks: []Check{{Name: "errors", Verdict: Fail, Reason: "500s"}}}
			rb, ev := Next(spec, s, obs)
			if rb.Phase != RolledBack || rb.Trigger != TriggerAnalysis {
				t.Fatalf("%+v", rb)
			}
			e := eventOf(ev, "rollout.target-unhealthy")
			if tc.trouble == "" {
				if e != nil || strings.Contains(rb.Reason, Both) || rb.TargetTrouble != "" {
					t.Fatalf("healthy target reported: %+v %v", rb, types(ev))
				}
				return
			}
			back := eventOf(ev, "rollout.rolled-back")
			if e == nil || !strings.Contains(e.Message, tc.trouble) || e.Data.(TargetReport).When != "rollback" ||
				!strings.Contains(rb.Reason, Both) || !strings.Contains(back.Message, tc.trouble) {
				t.Fatalf("reason %q, events %+v: want the target's trouble %q said", rb.Reason, ev, tc.trouble)
			}
			if rb.TargetTrouble == "" || back.Data.(Check).Name != "errors" {
				t.Fatalf("state %+v, rolled-back data %+v", rb, back.Data)
			}
		})
	}
}

func TestTargetIsWatchedAfterTheRollback(t *testing.T) {
	spec := blueGreen(true) // window 1m, progress deadline 10s
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	s, _ = RollBack(spec, s, t0, TriggerAbort, "aborted")
	ready := Count{Running: 2, Ready: 2}
	for _, tc := range []struct {
		name  string
		after time.Duration
		from  Count
		h     Health
		want  string
	}{
		{"healthy", 5 * time.Second, ready, Health{}, ""},
		{"starting", 5 * time.Second, Count{Running: 2}, Health{}, ""},
		{"none ready for the progress deadline", 10 * time.Second, Count{Running: 2}, Health{}, "no replica of revision 1 is ready"},
		{"crash loop", 5 * time.Second, Count{Running: 2, Ready: 2, Restarts: 3}, Health{}, "restarted 3 times"},
		{"error rate", 5 * time.Second, ready, Health{From: "error rate 12%"}, "error rate 12%"},
		{"after the watch", time.Minute, Count{Running: 2}, Health{From: "error rate 12%"}, ""},
		{"starting again after lastgood restarted", 20 * time.Second, Count{Running: 2}, Health{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := Observation{Now: t0.Add(tc.after), From: tc.from, Health: tc.h}
			if strings.HasPrefix(tc.name, "starting again") {
				obs.Watching = t0.Add(15 * time.Second)
			}
			next, ev := Next(spec, s, obs)
			e := eventOf(ev, "rollout.target-unhealthy")
			if tc.want == "" {
				if e != nil {
					t.Fatalf("reported %+v", e)
				}
				return
			}
			if e == nil || !strings.Contains(e.Message, tc.want) || e.Data.(TargetReport).When != "after-rollback" {
				t.Fatalf("events %+v, want %q", ev, tc.want)
			}
			if _, ev := Next(spec, next, obs); len(ev) != 0 {
				t.Fatalf("reported again: %v", types(ev))
			}
			if p := Desired(next); p.Weights[1] != 100 {
				t.Fatalf("the report moved traffic: %+v", p)
			}
		})
	}
}

func TestUndoIsJudgedLikeAPromotion(t *testing.T) {
	spec := blueGreen(true)
	spec.Checks = 1
	ready := Count{Running: 2, Ready: 2}
	// A fresh or warm undo to anything but the previous stable waits, like
	// a blue-green switch, until every check has looked at the ready revision.
	s := Start(Undo, spec, 4, 5, 2, t0)
	s.RestartsSeen = 7 // adopted replicas keep their past restarts (the controller starts the count at theirs)
	obs := Observation{Now: t0, From: ready, To: Count{Running: 2, Ready: 2, Restarts: 7 + CrashLoopRestarts - 1}}
	if next, _ := Next(spec, s, obs); next.Phase != Progressing || !Analyzing(spec, next, t0) {
		t.Fatalf("switched before its checks looked, or restarts before it counted: %+v", next)
	}
	obs.Checks = []Check{{Name: "errors", Verdict: Inconclusive, At: t0}}
	promoted, ev := Next(spec, s, obs)
	if promoted.Phase != Promoted || !slices.Contains(types(ev), "rollout.promoted") || !InWindow(promoted, t0) {
		t.Fatalf("did not switch after its checks looked: %+v", promoted)
	}
	// The classic undo to the warm previous stable switches at once.
	instant := Start(Undo, spec, 4, 5, 2, t0)
	instant.Instant = true
	if next, _ := Next(spec, instant, Observation{Now: t0, From: ready, To: ready}); next.Phase != Promoted {
		t.Fatalf("instant undo did not switch at once: %+v", next)
	}
	// Before the switch a failure keeps the revision that serves …
	obs.Checks = []Check{{Name: "errors", Verdict: Fail, Reason: "all 500"}}
	if rb, _ := Next(spec, s, obs); rb.Phase != RolledBack || rb.InWindow || Desired(rb).Weights[4] != 100 {
		t.Fatalf("failure before the switch: %+v", rb)
	}
	// … and inside the window it switches back to it.
	obs.Now = t0.Add(5 * time.Second)
	rb, _ := Next(spec, promoted, obs)
	if rb.Phase != RolledBack || !rb.InWindow || rb.Trigger != TriggerAnalysis || Desired(rb).Weights[4] != 100 || Desired(rb).Replicas[5] != 0 {
		t.Fatalf("failure inside the undo's window: %+v %+v", rb, Desired(rb))
	}
}
