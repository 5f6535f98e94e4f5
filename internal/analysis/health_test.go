package analysis

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/judge"
)

func TestDegraded(t *testing.T) {
	s := func(req, errs uint64) judge.Sample { return judge.Sample{Requests: req, Errors: errs} }
	for _, tc := range []struct {
		name          string
		history, now  judge.Sample
		degraded      bool
		reasonContain string
	}{
		{"no history", s(0, 0), s(1000, 1000), false, ""},
		{"as before", s(5000, 50), s(5000, 55), false, ""},
		{"a little worse, within the margin", s(5000, 50), s(5000, 90), false, ""},
		{"too few requests to say", s(5000, 0), s(20, 1), false, ""},
		{"crash loop errors", s(1200, 0), s(3000, 90), true, "error rate 3% (90 of 3000 requests since the rollout began) is above its history before it (0% of 1200 requests"},
		{"all failing", s(2000, 10), s(30, 30), true, "error rate 100%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ok := Degraded(tc.history, tc.now, DegradedMargin, 0.01, "its")
			if ok != tc.degraded || !strings.Contains(reason, tc.reasonContain) {
				t.Fatalf("degraded %v (%q), want %v containing %q", ok, reason, tc.degraded, tc.reasonContain)
			}
		})
	}
}

// An identical revision, looked at often, is called degraded rarely: at
// most α of the time.
func TestDegradedKeepsItsAlpha(t *testing.T) {
	const runs, looks, alpha = 400, 50, 0.05
	rng := rand.New(rand.NewPCG(7, 11))
	called := 0
	for range runs {
		history := judge.Sample{Requests: 2000}
		for range history.Requests {
			if rng.Float64() < 0.02 {
				history.Errors++
			}
		}
		var now judge.Sample
		for range looks {
			for range 100 {
				now.Requests++
				if rng.Float64() < 0.02 {
					now.Errors++
				}
			}
			if _, ok := Degraded(history, now, 0, alpha, "its"); ok {
				called++
				break
			}
		}
	}
	if rate := float64(called) / runs; rate > alpha {
		t.Fatalf("an identical revision was called degraded in %.1f%% of runs, more than α = %g", 100*rate, alpha)
	}
}
