package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// BenchmarkLook is the cost of one look of a compare check, what every
// router check pays every analysis.routerInterval: after a minute of a 20%
// canary at 200 req/s (looks every 100 ms) with a minute of stable
// history, one more look with its 4 canary and 16 stable requests.
//
//	go test -run ^$ -bench Look ./bench/detect
func BenchmarkLook(b *testing.B) {
	base := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5, factor: 1}
	for _, m := range []judge.Metric{judge.ErrorRate, judge.LatencyP99} {
		b.Run(string(m), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			bounds := bucketBounds()
			can, stab, hist := newRevision(bounds), newRevision(bounds), newRevision(bounds)
			hist.serve(rng, base, 12000)
			check := judge.Compare{Check: "c", Metric: m}
			var st judge.RateState
			look := func() {
				can.serve(rng, base, 4)
				stab.serve(rng, base, 16)
				st, _ = check.Judge(st, judge.Observation{Canary: can.sample, Stable: stab.sample, History: hist.sample}, 0.005)
			}
			for range 600 {
				look()
			}
			b.ReportAllocs()
			for b.Loop() {
				look()
			}
		})
	}
}
