package judge

import (
	"math/rand/v2"
	"testing"
)

// simulateMeans runs one rollout of per-task values: looks of 20 canary
// and 20 stable tasks, values drawn by draw, capped at 2^k.
func simulateMeans(rng *rand.Rand, looks int, k int, delta float64, canary, stable func(*rand.Rand) float64) Verdict {
	var st MeanState
	var c, s Means
	cap := float64(uint64(1) << k)
	for range looks {
		for range 20 {
			c.N++
			c.Sum += min(canary(rng), cap) / cap
			s.N++
			s.Sum += min(stable(rng), cap) / cap
		}
		var res Result
		st, res = JudgeMeans("steps", "toolCallsPerTask", "calls", "tasks", st, c, s, cap, Tolerance{Value: delta}, 0, 0, 0.05)
		if res.Verdict != Inconclusive {
			return res.Verdict
		}
	}
	return Inconclusive
}

func TestJudgeMeansAAIsRarelyFailedAndALoopIs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	calls := func(r *rand.Rand) float64 { return float64(2 + r.IntN(3)) } // 2..4
	loops := func(r *rand.Rand) float64 {
		if r.Float64() < 0.3 {
			return calls(r) + 6
		}
		return calls(r)
	}
	const runs = 200
	fails, passes := 0, 0
	for range runs {
		switch simulateMeans(rng, 100, MeanCap(3), 1, calls, calls) {
		case Fail:
			fails++
		case Pass:
			passes++
		}
	}
	// α = 0.05: at most 10 expected; 20 is far beyond chance.
	if fails > 20 || passes < runs/2 {
		t.Errorf("A/A: %d of %d failed, %d passed", fails, runs, passes)
	}
	t.Logf("A/A: %d failed, %d passed of %d", fails, passes, runs)
	caught := 0
	for range 50 {
		if simulateMeans(rng, 100, MeanCap(3), 1, loops, calls) == Fail {
			caught++
		}
	}
	t.Logf("loops: %d of 50 failed", caught)
	if caught < 45 {
		t.Errorf("a loop in 30%% of tasks (+1.8 calls, tolerance 1) was failed in %d of 50 rollouts", caught)
	}
}

func TestMeanCap(t *testing.T) {
	for _, c := range []struct {
		mean float64
		k    int
	}{{0, 2}, {1, 2}, {3, 4}, {120, 9}} {
		if got := MeanCap(c.mean); got != c.k {
			t.Errorf("MeanCap(%g) = %d, want %d", c.mean, got, c.k)
		}
	}
}
