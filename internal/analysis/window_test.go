package analysis

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
)

// traffic splits requests between revisions exactly by weight, carrying
// remainders, as the router's weighted schedule does.
type traffic struct{ credit map[int]float64 }

func (tr *traffic) split(n float64, weights map[int]int) map[int]int {
	if tr.credit == nil {
		tr.credit = map[int]float64{}
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	out := map[int]int{}
	for rev, w := range weights {
		tr.credit[rev] += n * float64(w) / float64(total)
		out[rev] = int(tr.credit[rev])
		tr.credit[rev] -= float64(out[rev])
	}
	return out
}

// serve adds n requests of rev failing with probability p.
func (w *world) serve(rng *rand.Rand, rev, n int, p float64) {
	var errs uint64
	for range n {
		if rng.Float64() < p {
			errs++
		}
	}
	w.add(rev, uint64(n), errs)
}

// The case: errors 1% → 3% with maxIncrease 0.01 at 150 req/s,
// which a rollout can let through (it is 1 pp beyond the tolerance). The
// rollback window must still roll it back within its default 10 minutes,
// with the default holdback: the compare check goes on, one e-process, on
// the requests the two revisions serve at the same moments. A blue-green
// release is the hard case — no canary traffic before the switch, so the
// window holds all the evidence; a canary at 10% then 50% for 30 s each
// brings some from its steps. Deterministic draws: the counts are fixed by
// the seeds, so this is not a flaky statistical test but a measured one
// (bench/window reports the same on more releases).
func TestTheWindowCatchesWhatTheRolloutLetThrough(t *testing.T) {
	const rate, look = 150.0, 100 * time.Millisecond
	window := 10 * time.Minute
	holdback := int(manifest.DefaultHoldback)
	for _, tc := range []struct {
		name  string
		steps []struct {
			weight int
			for_   time.Duration
		}
		want int // of 40 releases, rolled back by the end of the window
	}{
		{"blue-green", nil, 38},
		{"canary 10%, 50%", []struct {
			weight int
			for_   time.Duration
		}{{10, 30 * time.Second}, {50, 30 * time.Second}}, 39},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caught := 0
			var after []time.Duration
			for r := range 40 {
				rng := rand.New(rand.NewPCG(11, uint64(r)))
				w := &world{samples: map[int]judge.Sample{1: {Requests: 9000, Errors: 90}}} // a minute of history
				run := newRunner(t, w, manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}})
				c := run.checks[0]
				var tr traffic
				at := t0
				failed := false
				step := func(weights map[int]int) {
					at = at.Add(look)
					n := tr.split(rate*look.Seconds(), weights)
					w.serve(rng, 1, n[1], 0.01)
					w.serve(rng, 2, n[2], 0.03)
					failed = failed || c.look(context.Background(), at).Verdict == judge.Fail
				}
				c.look(context.Background(), at)
				for _, s := range tc.steps {
					for end := at.Add(s.for_); at.Before(end) && !failed; {
						step(map[int]int{2: s.weight, 1: 100 - s.weight})
					}
				}
				promoted := at
				for end := at.Add(window); at.Before(end) && !failed; {
					step(map[int]int{2: 100 - holdback, 1: holdback})
				}
				if failed {
					caught++
					if at.After(promoted) {
						after = append(after, at.Sub(promoted))
					}
				}
			}
			if caught < tc.want {
				t.Fatalf("%d of 40 releases rolled back by the end of the window at a %d%% holdback, want at least %d", caught, holdback, tc.want)
			}
			t.Logf("%d of 40 rolled back, %d of them inside the window, after the promotion by %v", caught, len(after), after)
		})
	}
}
