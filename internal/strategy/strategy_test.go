package strategy

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// world simulates replicas that become ready a fixed number of ticks after
// they start (never, when delay < 0). It honours the desired replica counts
// the way the local engine does: unready replicas are stopped first.
type world struct {
	tick     int
	delay    map[int]int // per revision
	replicas map[int][]int
}

func newWorld(delays map[int]int, running map[int]int) *world {
	w := &world{delay: delays, replicas: map[int][]int{}}
	for rev, n := range running {
		for range n {
			w.replicas[rev] = append(w.replicas[rev], -1000) // long ready
		}
	}
	return w
}

func (w *world) ready(rev int) int {
	n := 0
	for _, at := range w.replicas[rev] {
		if at <= w.tick && (w.delay[rev] >= 0 || at == -1000) {
			n++
		}
	}
	return n
}

func (w *world) apply(p Plan) {
	for rev, want := range p.Replicas {
		rs := w.replicas[rev]
		for len(rs) < want {
			rs = append(rs, w.tick+w.delay[rev])
		}
		// Stop not-ready replicas first: they sort last when sorted by start tick.
		slices.Sort(rs)
		w.replicas[rev] = rs[:want]
	}
}

func (w *world) observe(s State) Observation {
	return Observation{
		Now:  t0.Add(time.Duration(w.tick) * time.Second),
		From: Count{Running: len(w.replicas[s.From]), Ready: w.ready(s.From)},
		To:   Count{Running: len(w.replicas[s.To]), Ready: w.ready(s.To)},
	}
}

// run steps the rollout one simulated second at a time until it ends, with
// check called after every tick.
func run(t *testing.T, spec Spec, s State, w *world, ticks int, check func(State, Observation)) (State, []Event) {
	t.Helper()
	var all []Event
	for range ticks {
		w.apply(Desired(s))
		obs := w.observe(s)
		var ev []Event
		s, ev = Next(spec, s, obs)
		all = append(all, ev...)
		if check != nil {
			check(s, obs)
		}
		if s.Phase.Final() || s.Phase == Paused {
			w.apply(Desired(s))
			return s, all
		}
		w.tick++
	}
	return s, all
}

func types(ev []Event) []string {
	var out []string
	for _, e := range ev {
		out = append(out, e.Type)
	}
	return out
}

func blueGreen(auto bool) Spec {
	return Spec{Replicas: 2, ProgressDeadline: 10 * time.Second, Window: time.Minute,
		Strategy: manifest.Strategy{BlueGreen: &manifest.BlueGreen{AutoPromote: &auto}}}
}

func TestInitialReleaseRoutesReadyReplicasAndPromotes(t *testing.T) {
	spec := Spec{Replicas: 3, ProgressDeadline: 10 * time.Second}
	s := Start(BlueGreen, spec, 0, 1, 0, t0)
	if s.Kind != Initial {
		t.Fatalf("kind = %q, want initial", s.Kind)
	}
	w := newWorld(map[int]int{1: 2}, nil)
	s, ev := run(t, spec, s, w, 20, nil)
	if s.Phase != Promoted {
		t.Fatalf("phase = %s, want promoted; events %v", s.Phase, types(ev))
	}
	p := Desired(s)
	if p.Replicas[1] != 3 || p.Weights[1] != 100 {
		t.Fatalf("plan = %+v", p)
	}
}

func TestBlueGreenKeepsTrafficOnStableUntilReadyThenSwitches(t *testing.T) {
	spec := blueGreen(true)
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	w := newWorld(map[int]int{2: 3}, map[int]int{1: 2})
	s, ev := run(t, spec, s, w, 20, func(s State, obs Observation) {
		p := Desired(s)
		if !s.Phase.Final() && (p.Weights[1] != 100 || p.Weights[2] != 0 || p.Preview != 2) {
			t.Fatalf("before promotion plan = %+v", p)
		}
	})
	if s.Phase != Promoted || !slices.Contains(types(ev), "rollout.promoted") {
		t.Fatalf("phase %s events %v", s.Phase, types(ev))
	}
	p := Desired(s)
	if p.Weights[2] != 100 || p.Replicas[1] != 2 || p.Preview != 0 {
		t.Fatalf("after promotion plan = %+v: want all traffic on 2 and 1 warm", p)
	}
	// Inside the window the previous revision stays warm …
	ready := Count{Running: 2, Ready: 2}
	s2, ev := Next(spec, s, Observation{Now: s.WarmUntil.Add(-time.Millisecond), From: ready, To: ready})
	if s2.FromReplicas != 2 || len(ev) != 0 {
		t.Fatalf("inside the window: %+v %v", s2, ev)
	}
	// … and stops when it ends, once.
	s3, ev := Next(spec, s2, Observation{Now: s.WarmUntil})
	if s3.FromReplicas != 0 || len(ev) != 1 {
		t.Fatalf("window end: from replicas %d events %v", s3.FromReplicas, ev)
	}
	if _, ev := Next(spec, s3, Observation{Now: s.WarmUntil.Add(time.Hour)}); len(ev) != 0 {
		t.Fatalf("window end recorded twice: %v", ev)
	}
}

func TestBlueGreenManualWaitsForPromote(t *testing.T) {
	spec := blueGreen(false)
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	w := newWorld(map[int]int{2: 1}, map[int]int{1: 2})
	s, _ = run(t, spec, s, w, 20, nil)
	if s.Phase != Paused || s.PauseReason != PausePromote {
		t.Fatalf("phase %s/%s, want paused for promote", s.Phase, s.PauseReason)
	}
	// Waiting for a human is not a missed deadline.
	s, _ = Next(spec, s, Observation{Now: t0.Add(time.Hour), To: Count{Running: 2, Ready: 2}, From: Count{Running: 2, Ready: 2}})
	if s.Phase != Paused {
		t.Fatalf("phase %s after an hour of waiting", s.Phase)
	}
	s, _, err := Promote(spec, s, t0.Add(time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	s, _ = Next(spec, s, Observation{Now: t0.Add(time.Hour), To: Count{Running: 2, Ready: 2}, From: Count{Running: 2, Ready: 2}})
	if s.Phase != Promoted || Desired(s).Weights[2] != 100 {
		t.Fatalf("after promote: %+v", s)
	}
}

func TestNeverReadyRollsBackAtProgressDeadline(t *testing.T) {
	for _, kind := range []string{BlueGreen, Canary, Rolling} {
		t.Run(kind, func(t *testing.T) {
			spec := Spec{Replicas: 2, ProgressDeadline: 5 * time.Second, Window: time.Minute}
			switch kind {
			case BlueGreen:
				spec.Strategy.BlueGreen = &manifest.BlueGreen{}
			case Canary:
				spec.Strategy.Canary = &manifest.Canary{Steps: []manifest.Step{{SetWeight: ptr(50)}}}
			case Rolling:
				spec.Strategy.Rolling = &manifest.Rolling{MaxSurge: manifest.IntOrPercent{Value: 1}}
			}
			s := Start(kind, spec, 1, 2, 2, t0)
			w := newWorld(map[int]int{2: -1}, map[int]int{1: 2})
			s, ev := run(t, spec, s, w, 30, func(s State, obs Observation) {
				// The stable revision never loses a ready replica.
				if got := min(obs.From.Ready, s.FromReplicas); got < 2 && !s.Phase.Final() {
					t.Fatalf("stable ready replicas dropped to %d", got)
				}
			})
			if s.Phase != RolledBack || s.Trigger != TriggerProgressDeadline {
				t.Fatalf("phase %s trigger %q events %v", s.Phase, s.Trigger, types(ev))
			}
			if got := s.Ended.Sub(t0); got < 5*time.Second || got > 7*time.Second {
				t.Fatalf("rolled back after %s, want just past the 5s deadline", got)
			}
			p := Desired(s)
			if p.Replicas[2] != 0 || p.Replicas[1] != 2 {
				t.Fatalf("plan after rollback %+v", p)
			}
			if !p.ByReady && p.Weights[1] != 100 {
				t.Fatalf("traffic after rollback %+v", p)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCanaryStepsWeightsAndPromote(t *testing.T) {
	spec := Spec{Replicas: 4, ProgressDeadline: time.Minute, Window: time.Minute,
		Strategy: manifest.Strategy{Canary: &manifest.Canary{Steps: []manifest.Step{
			{SetWeight: ptr(25)},
			{Pause: &manifest.Pause{For: manifest.Duration(3 * time.Second)}},
			{SetWeight: ptr(50)},
			{Pause: &manifest.Pause{}},
			{SetWeight: ptr(75)},
		}}}}
	s := Start(Canary, spec, 1, 2, 4, t0)
	w := newWorld(map[int]int{2: 1}, map[int]int{1: 4})
	var weights []int
	s, _ = run(t, spec, s, w, 30, func(s State, _ Observation) {
		if len(weights) == 0 || weights[len(weights)-1] != s.Weight {
			weights = append(weights, s.Weight)
		}
		if s.ToReplicas*100 < s.Weight*spec.Replicas {
			t.Fatalf("weight %d%% on %d of %d replicas", s.Weight, s.ToReplicas, spec.Replicas)
		}
	})
	if s.Phase != Paused || s.Weight != 50 || s.Step != 3 {
		t.Fatalf("want paused at step 4 with 50%%, got %s step %d weight %d", s.Phase, s.Step, s.Weight)
	}
	if !slices.Equal(weights, []int{0, 25, 50}) {
		t.Fatalf("weights went %v", weights)
	}
	p := Desired(s)
	if p.Weights[1] != 50 || p.Weights[2] != 50 || p.Replicas[2] != 2 || p.Replicas[1] != 4 {
		t.Fatalf("plan at 50%%: %+v", p)
	}
	now := t0.Add(time.Duration(w.tick) * time.Second)
	s, _, err := Promote(spec, s, now, false)
	if err != nil {
		t.Fatal(err)
	}
	s, _ = run(t, spec, s, w, 30, nil)
	if s.Phase != Promoted || Desired(s).Weights[2] != 100 || s.ToReplicas != 4 {
		t.Fatalf("after promote: phase %s to replicas %d", s.Phase, s.ToReplicas)
	}
}

func TestCanaryPromoteFullSkipsSteps(t *testing.T) {
	spec := Spec{Replicas: 2, ProgressDeadline: time.Minute,
		Strategy: manifest.Strategy{Canary: &manifest.Canary{Steps: []manifest.Step{
			{SetWeight: ptr(10)}, {Pause: &manifest.Pause{}}, {SetWeight: ptr(50)}, {Pause: &manifest.Pause{}},
		}}}}
	s := Start(Canary, spec, 1, 2, 2, t0)
	w := newWorld(map[int]int{2: 0}, map[int]int{1: 2})
	s, _ = run(t, spec, s, w, 10, nil)
	if s.Phase != Paused || s.Step != 1 {
		t.Fatalf("phase %s step %d", s.Phase, s.Step)
	}
	s, _, _ = Promote(spec, s, t0, true)
	s, _ = run(t, spec, s, w, 10, nil)
	if s.Phase != Promoted {
		t.Fatalf("phase %s after promote --full", s.Phase)
	}
}

// TestRollingKeepsAvailability simulates many rolling updates with random
// sizes, surges and readiness delays and checks the two promises of
// maxSurge and maxUnavailable at every tick.
func TestRollingKeepsAvailability(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		n := 1 + rng.IntN(8)
		surge, unavailable := rng.IntN(3), rng.IntN(3)
		if surge+unavailable == 0 {
			surge = 1
		}
		unavailable = min(unavailable, n)
		spec := Spec{Replicas: n, ProgressDeadline: time.Hour,
			Strategy: manifest.Strategy{Rolling: &manifest.Rolling{
				MaxSurge: manifest.IntOrPercent{Value: surge}, MaxUnavailable: manifest.IntOrPercent{Value: unavailable}}}}
		s := Start(Rolling, spec, 1, 2, n, t0)
		w := newWorld(map[int]int{2: rng.IntN(4)}, map[int]int{1: n})
		s, ev := run(t, spec, s, w, 200, func(s State, obs Observation) {
			if total := s.FromReplicas + s.ToReplicas; total > n+surge {
				t.Fatalf("case %d: %d replicas desired, more than %d+%d", i, total, n, surge)
			}
			avail := min(obs.From.Ready, s.FromReplicas) + min(obs.To.Ready, s.ToReplicas)
			if avail < n-unavailable && !s.Phase.Final() {
				// obs is from before this tick's scale-down, so availability
				// can only be checked against what stays: FromReplicas.
				t.Fatalf("case %d (n=%d surge=%d unavailable=%d): %d ready, fewer than %d", i, n, surge, unavailable, avail, n-unavailable)
			}
		})
		if s.Phase != Promoted {
			t.Fatalf("case %d: phase %s after 200 ticks; events %v", i, s.Phase, types(ev))
		}
	}
}

func TestResolvePercent(t *testing.T) {
	for _, c := range []struct {
		v        manifest.IntOrPercent
		n        int
		up, down int
	}{
		{manifest.IntOrPercent{Value: 25, Percent: true}, 10, 3, 2},
		{manifest.IntOrPercent{Value: 100, Percent: true}, 3, 3, 3},
		{manifest.IntOrPercent{Value: 2}, 10, 2, 2},
		{manifest.IntOrPercent{Value: 0, Percent: true}, 10, 0, 0},
	} {
		if got := Resolve(c.v, c.n, true); got != c.up {
			t.Errorf("Resolve(%+v, %d, up) = %d, want %d", c.v, c.n, got, c.up)
		}
		if got := Resolve(c.v, c.n, false); got != c.down {
			t.Errorf("Resolve(%+v, %d, down) = %d, want %d", c.v, c.n, got, c.down)
		}
	}
}

func TestPauseStopsTheClock(t *testing.T) {
	spec := Spec{Replicas: 1, ProgressDeadline: 10 * time.Second,
		Strategy: manifest.Strategy{Canary: &manifest.Canary{Steps: []manifest.Step{
			{SetWeight: ptr(50)}, {Pause: &manifest.Pause{For: manifest.Duration(10 * time.Second)}},
		}}}}
	s := Start(Canary, spec, 1, 2, 1, t0)
	ready := Observation{Now: t0, From: Count{Running: 1, Ready: 1}, To: Count{Running: 1, Ready: 1}}
	s, _ = Next(spec, s, ready) // 50% and into the timed pause
	if s.Step != 1 {
		t.Fatalf("step %d", s.Step)
	}
	s, _, _ = Pause(s, t0.Add(5*time.Second))
	ready.Now = t0.Add(time.Hour)
	if s2, _ := Next(spec, s, ready); s2.Phase != Paused {
		t.Fatalf("paused rollout moved: %s", s2.Phase)
	}
	s, _, err := Resume(s, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// 5 s of the 10 s pause were left when it was paused.
	ready.Now = t0.Add(time.Hour + 4*time.Second)
	if s, _ = Next(spec, s, ready); s.Step != 1 {
		t.Fatalf("timed pause ended early: step %d", s.Step)
	}
	ready.Now = t0.Add(time.Hour + 5*time.Second)
	if s, _ = Next(spec, s, ready); s.Phase != Promoted {
		t.Fatalf("timed pause did not end: %s step %d", s.Phase, s.Step)
	}
	if _, _, err := Resume(s, ready.Now); !errors.Is(err, ErrFinished) {
		t.Fatalf("resume after the end: %v", err)
	}
}

func TestAbortReturnsTrafficAndIsFinal(t *testing.T) {
	spec := Spec{Replicas: 2, ProgressDeadline: time.Minute, Window: time.Minute,
		Strategy: manifest.Strategy{Canary: &manifest.Canary{Steps: []manifest.Step{{SetWeight: ptr(50)}, {Pause: &manifest.Pause{}}}}}}
	s := Start(Canary, spec, 3, 4, 2, t0)
	s, _ = Next(spec, s, Observation{Now: t0, From: Count{Running: 2, Ready: 2}, To: Count{Running: 1, Ready: 1}})
	if Desired(s).Weights[4] != 50 {
		t.Fatalf("setup: %+v", Desired(s))
	}
	s, ev, err := Abort(spec, s, t0.Add(time.Second))
	if err != nil || s.Phase != Aborted || len(ev) != 1 {
		t.Fatalf("abort: %v %+v %v", err, s, ev)
	}
	if p := Desired(s); p.Weights[3] != 100 || p.Replicas[4] != 0 || p.Replicas[3] != 2 {
		t.Fatalf("plan after abort %+v", p)
	}
	if _, _, err := Abort(spec, s, t0); !errors.Is(err, ErrFinished) {
		t.Fatalf("second abort: %v", err)
	}
	if _, _, err := Promote(spec, s, t0, false); !errors.Is(err, ErrFinished) {
		t.Fatalf("promote after abort: %v", err)
	}
}

func TestNextIsIdempotent(t *testing.T) {
	spec := blueGreen(true)
	s := Start(BlueGreen, spec, 1, 2, 2, t0)
	obs := Observation{Now: t0.Add(time.Second), From: Count{Running: 2, Ready: 2}, To: Count{Running: 2, Ready: 1}}
	s1, _ := Next(spec, s, obs)
	s2, ev := Next(spec, s1, obs)
	if s1 != s2 || len(ev) != 0 {
		t.Fatalf("second Next changed state or recorded %v", ev)
	}
}

func TestRollingPromoteIsRefused(t *testing.T) {
	spec := Spec{Replicas: 2, Strategy: manifest.Strategy{Rolling: &manifest.Rolling{}}}
	s := Start(Rolling, spec, 1, 2, 2, t0)
	if _, _, err := Promote(spec, s, t0, false); !errors.Is(err, ErrNoPromote) {
		t.Fatalf("err = %v", err)
	}
}
