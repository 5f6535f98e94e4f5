// Command detect measures how fast lastgood's judge (internal/judge) rolls
// back a bad canary and how rarely it rolls back a good one, by simulating
// thousands of canary analyses on a synthetic clock (no sleeping): 200
// req/s, 5% and 20% to the canary, a look every 100 ms (the default
// analysis.routerInterval), a stable revision with a minute of history,
// an error-rate check and a p99 latency check sharing α = 0.01. Beside
// each scenario it reports Wald's SPRT (the one-sample lower bound), the
// two-sample growth-optimal figure, a fixed-horizon z-test and a
// Flagger-style threshold check on the same simulated traffic.
//
//	go run ./bench/detect [-rollouts 2000] [-aa-rollouts 4000] [-canary 5,20] [-look 100ms] [-history 1m] [-seed 2] [-out bench/detect/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lastgood/lastgood/bench/internal/stats"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "detect:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	rollouts := fs.Int("rollouts", 2000, "simulated rollouts per scenario")
	aaRollouts := fs.Int("aa-rollouts", 4000, "simulated rollouts of the A/A scenario (its false-rollback rate needs a narrow interval)")
	seed := fs.Uint64("seed", 2, "random seed (the judge's parameters were chosen on seed 1; reports use seed 2)")
	horizon := fs.Duration("horizon", 30*time.Minute, "longest a rollout is watched")
	aaHorizon := fs.Duration("aa-horizon", 10*time.Minute, "how long an A/A rollout is watched")
	out := fs.String("out", "", "write the Markdown report here as well as to stdout")
	canaries := fs.String("canary", "5,20", "the canary's shares of the 200 req/s to simulate, in percent, comma-separated")
	look := fs.Duration("look", 100*time.Millisecond, "time between two looks (analysis.routerInterval)")
	history := fs.Duration("history", time.Minute, "how long the stable served all traffic before the canary started (0: no history)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "parallel simulations")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := config{
		rollouts: *rollouts, aaRollouts: *aaRollouts, seed: *seed, workers: max(*workers, 1),
		horizon: int(horizon.Seconds()), aaHorizon: int(aaHorizon.Seconds()),
		alpha: 0.01,
		look:  *look, history: *history,
	}
	if *look <= 0 || time.Second%*look != 0 {
		return fmt.Errorf("-look %v must divide a second", *look)
	}
	for _, f := range strings.Split(*canaries, ",") {
		pct, err := strconv.Atoi(strings.TrimSpace(f))
		tr := traffic{canaryPerSec: 2 * pct, stablePerSec: 200 - 2*pct}
		if err != nil || pct <= 0 || pct >= 100 || float64(tr.canaryPerSec)*look.Seconds() != math.Trunc(float64(tr.canaryPerSec)*look.Seconds()) {
			return fmt.Errorf("-canary %q: want percentages between 1 and 99 whose requests per look are whole", f)
		}
		cfg.splits = append(cfg.splits, tr)
	}
	start := time.Now()
	var splits []split
	for si, tr := range cfg.splits {
		sp := split{traffic: tr}
		for i, sc := range scenarios() {
			r := cfg.measure(sc, tr, uint64(16*si+i))
			fmt.Fprintf(os.Stderr, "%d%% canary, %-28s done in %v\n", tr.percent(), sc.name, time.Since(start).Round(time.Second))
			sp.rows = append(sp.rows, r)
		}
		splits = append(splits, sp)
	}
	report := cfg.markdown(splits, time.Since(start))
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// config is one run of the benchmark.
type config struct {
	rollouts, workers  int
	aaRollouts         int
	seed               uint64
	horizon, aaHorizon int
	splits             []traffic
	alpha              float64
	look, history      time.Duration
}

// scenarios are the report's rows. Latencies are lognormal with median
// 50ms and σ = 0.5 (p99 ≈ 160ms); a latency regression scales the whole
// distribution, so its p99 grows by the same factor.
func scenarios() []scenario {
	base := arm{errRate: 0.01, median: 50 * time.Millisecond, sigma: 0.5, factor: 1}
	with := func(a arm, f func(*arm)) arm { f(&a); return a }
	tiny := with(base, func(a *arm) { a.errRate = 0.001 })
	return []scenario{
		{name: "A/A (no change)", stable: base, canary: base, kind: "none"},
		{name: "errors 1% → 2%", stable: base, canary: with(base, func(a *arm) { a.errRate = 0.02 }), kind: "error"},
		{name: "errors 1% → 5%", stable: base, canary: with(base, func(a *arm) { a.errRate = 0.05 }), kind: "error"},
		{name: "errors 0.1% → 1%", stable: tiny, canary: with(tiny, func(a *arm) { a.errRate = 0.01 }), kind: "error"},
		{name: "latency p99 +20%", stable: base, canary: with(base, func(a *arm) { a.factor = 1.2 }), kind: "latency"},
		{name: "latency p99 +100%", stable: base, canary: with(base, func(a *arm) { a.factor = 2 }), kind: "latency"},
	}
}

// measure runs cfg.rollouts rollouts of sc in parallel.
func (cfg config) measure(sc scenario, tr traffic, index uint64) row {
	s := setup{
		traffic:    tr,
		bounds:     bucketBounds(),
		alpha:      cfg.alpha,
		horizon:    cfg.horizon,
		look:       cfg.look,
		history:    cfg.history,
		flaggerErr: 1.5 * sc.stable.errRate,
		flaggerP99: 1.15 * sc.stable.p99(),
	}
	r := row{sc: sc}
	k := float64(tr.stablePerSec) / float64(tr.canaryPerSec)
	switch sc.kind {
	case "none":
		s.horizon = cfg.aaHorizon
		s.fixedN = uint64(cfg.aaHorizon * tr.canaryPerSec)
	case "error":
		p0, p1 := sc.stable.errRate, sc.canary.errRate
		r.sprt20 = stats.SPRTSamples(p0, p1, cfg.alpha, 0.2)
		r.sprt01 = stats.SPRTSamples(p0, p1, cfg.alpha, 0.01)
		r.sprtSim = sprtRuns(p0, p1, cfg.alpha, 0.01, 20000, cfg.seed<<40|index)
		r.gro = stats.GROSamples(p0, p1, k, cfg.alpha/2)
		s.fixedN = uint64(fixedSamples(p0, p1, k, cfg.alpha/2, 0.8))
	case "latency":
		p0, p1 := 0.01, slowShare(sc.stable.sigma, sc.canary.factor)
		r.sprt20 = stats.SPRTSamples(p0, p1, cfg.alpha, 0.2)
		r.sprt01 = stats.SPRTSamples(p0, p1, cfg.alpha, 0.01)
		r.sprtSim = sprtRuns(p0, p1, cfg.alpha, 0.01, 20000, cfg.seed<<40|index)
		r.gro = stats.GROSamples(p0, p1, k, cfg.alpha/2)
		s.fixedN = uint64(fixedSamples(p0, p1, k, cfg.alpha/2, 0.8))
	}
	r.fixedN = s.fixedN
	r.horizon = s.horizon
	r.flaggerErr, r.flaggerP99 = s.flaggerErr, s.flaggerP99

	n := cfg.rollouts
	if sc.kind == "none" {
		n = cfg.aaRollouts
	}
	outs := make([]outcome, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range cfg.workers {
		wg.Go(func() {
			for i := range next {
				outs[i] = s.rollout(sc, cfg.seed<<40|index<<32|uint64(i))
			}
		})
	}
	for i := range outs {
		next <- i
	}
	close(next)
	wg.Wait()
	r.summarise(outs)
	return r
}
