package strategy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func canaryWithAnalysis(steps ...manifest.Step) Spec {
	return Spec{Replicas: 2, ProgressDeadline: 10 * time.Second, Window: time.Minute, Checks: 2, OnNoData: NoDataWait,
		Strategy: manifest.Strategy{Canary: &manifest.Canary{Steps: steps}}}
}

func analyzeStep(forS, maxWaitS int) manifest.Step {
	return manifest.Step{Analyze: &manifest.Analyze{
		For: manifest.Duration(time.Duration(forS) * time.Second), MaxWait: manifest.Duration(time.Duration(maxWaitS) * time.Second)}}
}

// looks returns the verdicts of the two checks of canaryWithAnalysis.
func looks(at time.Time, errors, latency string, data bool) []Check {
	return []Check{
		{Name: "errors", Verdict: errors, Data: data, Reason: "errors " + errors, At: at},
		{Name: "latency", Verdict: latency, Data: data, Reason: "latency " + latency, At: at},
	}
}

// canaryAt returns a canary rollout at its analyze step (step 1), with both
// revisions' replicas ready.
func canaryAt(t *testing.T, spec Spec) (State, Observation) {
	t.Helper()
	s := Start(Canary, spec, 1, 2, 2, t0)
	obs := Observation{Now: t0, From: Count{Running: 2, Ready: 2}, To: Count{Running: 1, Ready: 1}}
	s, _ = Next(spec, s, obs)
	if s.Step != 1 || s.Weight != 10 {
		t.Fatalf("not at the analyze step: %+v", s)
	}
	return s, obs
}

func TestFailedCheckRollsBackAtOnce(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(30, 90), manifest.Step{SetWeight: ptr(50)})
	s, obs := canaryAt(t, spec)
	obs.Now = t0.Add(2 * time.Second)
	obs.Checks = looks(obs.Now, Fail, Inconclusive, true)
	s, ev := Next(spec, s, obs)
	if s.Phase != RolledBack || s.Trigger != TriggerAnalysis || !strings.Contains(s.Reason, "check errors failed: errors fail") {
		t.Fatalf("state %+v", s)
	}
	if len(ev) != 1 || ev[0].Type != "rollout.rolled-back" || ev[0].Data.(Check).Name != "errors" {
		t.Fatalf("events %+v", ev)
	}
	if p := Desired(s); p.Weights[1] != 100 || p.Replicas[2] != 0 {
		t.Fatalf("plan %+v", p)
	}
}

func TestFailedCheckRollsBackAPausedRollout(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, manifest.Step{Pause: &manifest.Pause{}})
	s := Start(Canary, spec, 1, 2, 2, t0)
	obs := Observation{Now: t0, From: Count{Running: 2, Ready: 2}, To: Count{Running: 1, Ready: 1}}
	s, _ = Next(spec, s, obs)
	if s.Phase != Paused {
		t.Fatalf("phase %s", s.Phase)
	}
	obs.Checks = looks(t0, Pass, Fail, true)
	if s, _ = Next(spec, s, obs); s.Phase != RolledBack || !strings.Contains(s.Reason, "latency") {
		t.Fatalf("a failed check did not end a paused rollout: %+v", s)
	}
}

func TestInitialIsNotJudged(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)})
	s := Start(Canary, spec, 0, 1, 0, t0)
	obs := Observation{Now: t0, To: Count{Running: 2, Ready: 0, Restarts: 9}, Checks: looks(t0, Fail, Fail, true)}
	if next, _ := Next(spec, s, obs); next.Phase.Final() {
		t.Errorf("%s rollout ended: %+v", s.Kind, next)
	}
	if Analyzing(spec, s, t0) {
		t.Errorf("%s rollout is analyzed", s.Kind)
	}
}

func TestCrashLoopRollsBack(t *testing.T) {
	spec := blueGreen(true)
	for _, tc := range []struct {
		exit    string
		trigger string
	}{
		{"exit status 1", TriggerCrashLoop},
		{"killed after failing its liveness probe", TriggerLiveness},
	} {
		s := Start(BlueGreen, spec, 1, 2, 2, t0)
		obs := Observation{Now: t0.Add(time.Second), From: Count{Running: 2, Ready: 2},
			To: Count{Running: 2, Restarts: CrashLoopRestarts - 1, LastExit: tc.exit}}
		if next, _ := Next(spec, s, obs); next.Phase.Final() {
			t.Fatalf("rolled back after %d restarts", obs.To.Restarts)
		}
		obs.To.Restarts++
		next, _ := Next(spec, s, obs)
		if next.Phase != RolledBack || next.Trigger != tc.trigger || !strings.Contains(next.Reason, tc.exit) {
			t.Errorf("%s: %+v", tc.exit, next)
		}
	}
}

func TestUnrunnableRollsBackAtOnce(t *testing.T) {
	spec := blueGreen(true)
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	obs := Observation{Now: t0.Add(time.Second), From: Count{Running: 2, Ready: 2},
		To: Count{Running: 2, Unrunnable: "ImagePullBackOff: Back-off pulling image"}}
	next, ev := Next(spec, s, obs)
	if next.Phase != RolledBack || next.Trigger != TriggerUnrunnable || next.Reason != "revision 2 cannot run: ImagePullBackOff: Back-off pulling image" {
		t.Fatalf("%+v", next)
	}
	if len(ev) != 1 || ev[0].Type != "rollout.rolled-back" {
		t.Fatalf("events %v", types(ev))
	}
	// A first release has nothing to return to: it waits for its deadline.
	first := Start(Initial, spec, 0, 1, 0, t0)
	if next, _ := Next(spec, first, obs); next.Phase.Final() {
		t.Fatalf("first release ended: %+v", next)
	}
}

func TestAnalyzeStepWaitsForDataThenGoesOn(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(30, 90), manifest.Step{SetWeight: ptr(50)})
	s, obs := canaryAt(t, spec)
	// Before `for`, even checks with data do not end the step.
	obs.Now = t0.Add(29 * time.Second)
	obs.Checks = looks(obs.Now, Pass, Inconclusive, true)
	if s2, _ := Next(spec, s, obs); s2.Step != 1 {
		t.Fatalf("left the analyze step before its duration: step %d", s2.Step)
	}
	// After it, one check without enough data holds the step …
	obs.Now = t0.Add(31 * time.Second)
	obs.To.Requests = 50 // the canary takes traffic
	obs.Checks[1].Data = false
	if s2, ev := Next(spec, s, obs); s2.Step != 1 || len(ev) != 0 {
		t.Fatalf("left the analyze step without data: step %d, %v", s2.Step, types(ev))
	}
	// … and once it has data, the rollout goes on.
	obs.Checks[1].Data = true
	s2, ev := Next(spec, s, obs)
	if s2.Step < 2 || !slices.Contains(types(ev), "analysis.passed") {
		t.Fatalf("did not go on: step %d, %v", s2.Step, types(ev))
	}
}

func TestAnalyzeStepOnNoData(t *testing.T) {
	for _, tc := range []struct {
		onNoData string
		check    func(t *testing.T, s State, ev []Event)
	}{
		{NoDataPass, func(t *testing.T, s State, ev []Event) {
			if s.Step < 2 || !slices.Contains(types(ev), "analysis.no-data") {
				t.Errorf("onNoData pass: step %d, %v", s.Step, types(ev))
			}
		}},
		{NoDataFail, func(t *testing.T, s State, ev []Event) {
			if s.Phase != RolledBack || s.Trigger != TriggerNoData || !strings.Contains(s.Reason, "latency") {
				t.Errorf("onNoData fail: %+v", s)
			}
		}},
		{NoDataWait, func(t *testing.T, s State, ev []Event) {
			if s.Phase.Final() || s.Step != 1 || !s.NoDataWait || !slices.Contains(types(ev), "analysis.no-data") {
				t.Errorf("onNoData wait: %+v %v", s, types(ev))
			}
		}},
	} {
		t.Run(tc.onNoData, func(t *testing.T) {
			spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(30, 90), manifest.Step{SetWeight: ptr(50)})
			spec.OnNoData = tc.onNoData
			s, obs := canaryAt(t, spec)
			obs.Checks = []Check{{Name: "errors", Verdict: Inconclusive, Data: true}, {Name: "latency", Verdict: Inconclusive}}
			obs.Now = t0.Add(89 * time.Second)
			obs.To.Requests = 50 // the canary takes traffic
			if s2, ev := Next(spec, s, obs); s2.Step != 1 || s2.Phase != Progressing || len(ev) != 0 {
				t.Fatalf("decided before maxWait: %+v", s2)
			}
			obs.Now = t0.Add(90 * time.Second)
			s2, ev := Next(spec, s, obs)
			tc.check(t, s2, ev)
			// Waiting is recorded once, not at every tick.
			if _, ev := Next(spec, s2, obs); tc.onNoData == NoDataWait && len(ev) != 0 {
				t.Errorf("recorded again: %v", types(ev))
			}
		})
	}
}

func TestUnlookedChecksLackData(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(1, 3))
	s, obs := canaryAt(t, spec)
	obs.Now = t0.Add(2 * time.Second)
	obs.Checks = looks(obs.Now, Pass, Pass, true)[:1] // one of two checks looked at
	if s2, _ := Next(spec, s, obs); s2.Step != 1 {
		t.Fatalf("went on with a check never looked at: %+v", s2)
	}
}

func TestBlueGreenSwitchesAfterEveryCheckLookedAtTheReadyRevision(t *testing.T) {
	spec := blueGreen(true)
	spec.Checks = 2
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	ready := Count{Running: 2, Ready: 2}
	readyAt := t0.Add(3 * time.Second)
	obs := Observation{Now: readyAt, From: ready, To: ready, Checks: looks(t0.Add(time.Second), Inconclusive, Pass, false)}
	s, _ = Next(spec, s, obs)
	if s.Phase != Progressing {
		t.Fatalf("switched on looks taken before the revision was ready: %+v", s)
	}
	obs.Now = readyAt.Add(time.Second)
	obs.Checks = looks(obs.Now, Inconclusive, Pass, false)
	if s, _ = Next(spec, s, obs); s.Phase != Promoted {
		t.Fatalf("did not switch after every check looked: %+v", s)
	}
}

func TestFailureInsideTheWindowReturnsToTheWarmRevision(t *testing.T) {
	spec := blueGreen(true)
	spec.Checks = 1
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	ready := Count{Running: 2, Ready: 2}
	s, _ = Next(spec, s, Observation{Now: t0, From: ready, To: ready, Checks: []Check{{Name: "errors", Verdict: Inconclusive, At: t0}}})
	if s.Phase != Promoted || !Analyzing(spec, s, t0) {
		t.Fatalf("not promoted and analyzing: %+v", s)
	}
	promoted := s
	for _, tc := range []struct {
		name    string
		obs     Observation
		trigger string
	}{
		{"check", Observation{Checks: []Check{{Name: "errors", Verdict: Fail, Reason: "5xx up"}}, To: ready}, TriggerAnalysis},
		{"readiness", Observation{To: Count{Running: 2}}, TriggerReadiness},
		{"crash loop", Observation{To: Count{Running: 2, Ready: 1, Restarts: 3, LastExit: "exit status 2"}}, TriggerCrashLoop},
		{"unrunnable", Observation{To: Count{Running: 2, Ready: 1, Unrunnable: "ErrImagePull"}}, TriggerUnrunnable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := tc.obs
			obs.From, obs.Now = ready, t0.Add(5*time.Second)
			s, ev := Next(spec, promoted, obs)
			if s.Phase != RolledBack || s.Trigger != tc.trigger || !s.InWindow || !strings.Contains(s.Reason, "inside the rollback window") {
				t.Fatalf("%+v", s)
			}
			if p := Desired(s); p.Weights[1] != 100 || p.Replicas[1] != 2 || p.Replicas[2] != 0 {
				t.Fatalf("plan %+v", p)
			}
			if len(ev) != 1 || ev[0].Type != "rollout.rolled-back" {
				t.Fatalf("events %v", types(ev))
			}
		})
	}
	// After the window nothing is judged any more.
	late := Observation{Now: promoted.WarmUntil, Checks: []Check{{Name: "errors", Verdict: Fail}}}
	if s, _ := Next(spec, promoted, late); s.Phase != Promoted || Analyzing(spec, s, late.Now) {
		t.Fatalf("judged after the window: %+v", s)
	}
}

// A promotion of a judged rollout keeps rollback.holdback percent of the
// traffic on the warm previous revision until the window ends: the
// concurrent baseline its compare checks go on judging against. An undo,
// a rolling rollout and a window of 0 keep nothing back.
func TestPromotionHoldsBackTrafficThroughTheWindow(t *testing.T) {
	ready := Count{Running: 2, Ready: 2}
	for _, tc := range []struct {
		name     string
		kind     string
		spec     func() Spec
		holdback int
	}{
		{"blue-green", BlueGreen, func() Spec { s := blueGreen(true); s.Holdback = 5; return s }, 5},
		{"canary", Canary, func() Spec {
			s := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)})
			s.Holdback, s.Checks = 2, 0
			return s
		}, 2},
		{"no holdback", BlueGreen, func() Spec { return blueGreen(true) }, 0},
		{"no window", BlueGreen, func() Spec { s := blueGreen(true); s.Holdback, s.Window = 5, 0; return s }, 0},
		{"undo", Undo, func() Spec { s := blueGreen(true); s.Holdback = 5; return s }, 0},
		{"rolling", Rolling, func() Spec {
			return Spec{Replicas: 2, ProgressDeadline: time.Minute, Window: time.Minute, Holdback: 5,
				Strategy: manifest.Strategy{Rolling: &manifest.Rolling{MaxSurge: manifest.IntOrPercent{Value: 2}}}}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec()
			s := Start(tc.kind, spec, 1, 2, 2, t0)
			var ev []Event
			for i := range 5 {
				from := ready
				if tc.kind == Rolling {
					from = Count{Running: s.FromReplicas, Ready: s.FromReplicas}
				}
				var more []Event
				s, more = Next(spec, s, Observation{Now: t0.Add(time.Duration(i) * time.Second), From: from, To: ready})
				ev = append(ev, more...)
			}
			if s.Phase != Promoted {
				t.Fatalf("not promoted: %+v", s)
			}
			p := Desired(s)
			if s.Holdback != tc.holdback {
				t.Fatalf("holdback %d, want %d", s.Holdback, tc.holdback)
			}
			if tc.holdback == 0 {
				if p.Weights[2] != 100 || p.Weights[1] != 0 || p.Holdback != 0 {
					t.Fatalf("plan without a holdback %+v", p)
				}
				return
			}
			if p.Weights[2] != 100-tc.holdback || p.Weights[1] != tc.holdback || p.Holdback != 1 || p.Replicas[1] != 2 {
				t.Fatalf("plan inside the window %+v, want %d%% held back on revision 1", p, tc.holdback)
			}
			if msg := ev[len(ev)-1].Message; !strings.Contains(msg, "held back") {
				t.Fatalf("promotion event %q does not say what is held back", msg)
			}
			// The window ends: the previous revision stops and takes
			// nothing any more.
			end, wev := Next(spec, s, Observation{Now: s.WarmUntil, From: ready, To: ready})
			if p := Desired(end); p.Weights[2] != 100 || p.Weights[1] != 0 || p.Holdback != 0 || p.Replicas[1] != 0 {
				t.Fatalf("plan after the window %+v", p)
			}
			if len(wev) != 1 || !strings.Contains(wev[0].Message, "held back on it moves to revision 2") {
				t.Fatalf("window-ended events %+v", wev)
			}
			// A failure inside the window takes all traffic back.
			rb, _ := Next(spec, s, Observation{Now: s.Ended.Add(time.Second), From: ready, To: ready,
				Checks: []Check{{Name: "errors", Verdict: Fail, Reason: "up"}}})
			if p := Desired(rb); rb.Phase != RolledBack || p.Weights[1] != 100 || p.Weights[2] != 0 || p.Holdback != 0 {
				t.Fatalf("rolled back in the window: %+v, plan %+v", rb, p)
			}
		})
	}
}
