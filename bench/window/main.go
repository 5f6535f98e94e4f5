// Command window measures what the rollback window does after a
// promotion, by simulating whole releases on a synthetic clock (no
// sleeping): a canary (10% for 30 s, then 50% for 30 s, each step an
// analyze step) or a blue-green switch, at 150 req/s, then the 10-minute
// rollback window, with two compare checks sharing α = 0.01 — errorRate
// (maxIncrease 0.01) and latencyP99 (maxIncrease 0). It uses the product's
// strategy core and judge as they ship: the weights, the promotion and the
// holdback are internal/strategy's, every verdict internal/judge's.
//
// It reports two things:
//
//   - A/A releases (the new revision identical to the stable) under load
//     changes after the promotion — surges ×3 for 20 s, CPU contention, a
//     neighbour's surge, hitting both revisions at the same moments: how
//     many are rolled back, over the rollout and the window together, with
//     the holdback and as lastgood judged the window before it (against
//     the idle stable's last figures).
//
//   - Power inside the window: regressions the rollout may let through
//     (errors 1% → 3% and 1% → 5% at maxIncrease 0.01, p99 +30 ms): the
//     share caught before promotion, inside the window (and how long after
//     the promotion), and never, for several holdbacks.
//
//     go run ./bench/window [-releases 1000] [-power-releases 300] [-holdback 5] [-holdbacks 0,1,2,5,10] [-seed 2] [-out bench/window/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "window:", err)
		os.Exit(1)
	}
}

// config is one run of the benchmark.
type config struct {
	releases, powerReleases int
	frozenReleases          int
	holdback                int
	holdbacks               []int
	seed                    uint64
	workers                 int
	rate                    float64
	only                    string // run only the A/A part ("aa") or the power part ("power")
}

func run(args []string) error {
	fs := flag.NewFlagSet("window", flag.ContinueOnError)
	var cfg config
	fs.IntVar(&cfg.releases, "releases", 1000, "simulated A/A releases per scenario and configuration")
	fs.IntVar(&cfg.powerReleases, "power-releases", 300, "simulated bad releases per regression, holdback and strategy")
	fs.IntVar(&cfg.frozenReleases, "frozen-releases", 300, "simulated A/A releases per scenario judged as before the holdback (frozen figures)")
	fs.IntVar(&cfg.holdback, "holdback", int(manifest.DefaultHoldback), "rollback.holdback of the A/A releases, percent")
	holdbacks := fs.String("holdbacks", "0,2,5,10,20", "rollback.holdback values of the power table, percent, comma-separated")
	fs.Uint64Var(&cfg.seed, "seed", 2, "random seed (the default holdback was chosen with seed 1; reports use seed 2)")
	fs.IntVar(&cfg.workers, "workers", runtime.GOMAXPROCS(0), "parallel simulations")
	fs.Float64Var(&cfg.rate, "rate", 150, "requests per second in calm conditions")
	fs.StringVar(&cfg.only, "only", "", "run only one part: aa or power")
	out := fs.String("out", "", "write the Markdown report here as well as to stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*holdbacks, ",") {
		h, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || h < 0 || h > 50 {
			return fmt.Errorf("-holdbacks %q: want percentages between 0 and 50", f)
		}
		cfg.holdbacks = append(cfg.holdbacks, h)
	}
	start := time.Now()
	r := report{cfg: cfg}
	if cfg.only != "power" {
		for i, sc := range aaScenarios() {
			for _, frozen := range []bool{false, true} {
				s := cfg.setup(canarySteps(), cfg.holdback)
				if frozen {
					s.holdback, s.frozen = 0, true
				}
				n := cfg.releases
				if frozen {
					n = cfg.frozenReleases
				}
				outs := cfg.simulate(s, base, sc.episodes, n, uint64(i)<<1|b2u(frozen))
				r.aa = append(r.aa, aaRow{sc: sc, frozen: frozen, outs: outs})
				fmt.Fprintf(os.Stderr, "A/A %-40s frozen=%v done in %v\n", sc.name, frozen, time.Since(start).Round(time.Second))
			}
		}
	}
	if cfg.only != "aa" {
		for i, reg := range regressions() {
			for j, strat := range []manifest.Strategy{canarySteps(), {BlueGreen: &manifest.BlueGreen{}}} {
				for k, h := range cfg.holdbacks {
					outs := cfg.simulate(cfg.setup(strat, h), reg.canary, nil, cfg.powerReleases, 1<<20|uint64(i)<<12|uint64(j)<<8|uint64(k))
					r.power = append(r.power, powerRow{reg: reg, strategy: strat.Kind(), holdback: h, outs: outs})
				}
				fmt.Fprintf(os.Stderr, "power %-24s %-9s done in %v\n", reg.name, strat.Kind(), time.Since(start).Round(time.Second))
			}
		}
	}
	r.took = time.Since(start)
	text := r.markdown()
	fmt.Print(text)
	if *out != "" {
		return os.WriteFile(*out, []byte(text), 0o644)
	}
	return nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// canarySteps is the release of the A/A runs: 10% then 50%, each
// analyzed for 30 s.
func canarySteps() manifest.Strategy {
	w := func(n int) *int { return &n }
	an := &manifest.Analyze{For: manifest.Duration(30 * time.Second), MaxWait: manifest.Duration(90 * time.Second)}
	return manifest.Strategy{Canary: &manifest.Canary{Steps: []manifest.Step{
		{SetWeight: w(10)}, {Analyze: an}, {SetWeight: w(50)}, {Analyze: an},
	}}}
}

func (cfg config) setup(strat manifest.Strategy, holdback int) setup {
	return setup{
		rate: cfg.rate, look: 100 * time.Millisecond, history: time.Minute, window: 10 * time.Minute,
		holdback: holdback, alpha: 0.01, errTolerance: 0.01, strategy: strat,
	}
}

// simulate runs n releases of s in parallel; release i draws from its own
// generator, seeded by the run's seed, the table index and i.
func (cfg config) simulate(s setup, canary arm, episodes func(*rand.Rand) []episode, n int, index uint64) []outcome {
	outs := make([]outcome, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(cfg.workers, 1) {
		wg.Go(func() {
			for i := range next {
				rng := rand.New(rand.NewPCG(cfg.seed, index<<32|uint64(i)))
				var eps []episode
				if episodes != nil {
					eps = episodes(rng)
				}
				outs[i] = s.release(rng, canary, eps)
			}
		})
	}
	for i := range outs {
		next <- i
	}
	close(next)
	wg.Wait()
	return outs
}

// aaScenario is one row of the A/A table: what the environment does after
// the promotion.
type aaScenario struct {
	name     string
	episodes func(*rand.Rand) []episode
}

// window is where episodes can start: anywhere in the 10-minute window
// that leaves room for them to end inside it.
const window = 10 * time.Minute

// at draws n episodes of length d and condition c at uniform times.
func at(rng *rand.Rand, n int, d time.Duration, c condition) []episode {
	var out []episode
	for range n {
		from := time.Duration(rng.Int64N(int64(window - d)))
		out = append(out, episode{from: from, to: from + d, c: c})
	}
	return out
}

var (
	surge      = condition{rate: 3, latency: 1.3, errors: 0.005}
	contention = condition{rate: 1, latency: 2}
	neighbour  = condition{rate: 1, latency: 1, shift: 40 * time.Millisecond, errors: 0.02}
)

func aaScenarios() []aaScenario {
	return []aaScenario{
		{"steady load", func(*rand.Rand) []episode { return nil }},
		{"3 surges ×3 for 20 s", func(r *rand.Rand) []episode { return at(r, 3, 20*time.Second, surge) }},
		{"CPU contention, 2 × 60 s", func(r *rand.Rand) []episode { return at(r, 2, time.Minute, contention) }},
		{"a neighbour's surge, 2 × 30 s", func(r *rand.Rand) []episode { return at(r, 2, 30*time.Second, neighbour) }},
		{"all three", func(r *rand.Rand) []episode {
			return append(append(at(r, 3, 20*time.Second, surge), at(r, 2, time.Minute, contention)...), at(r, 2, 30*time.Second, neighbour)...)
		}},
	}
}

// regression is one row of the power table: a new revision worse than the
// stable from its first request.
type regression struct {
	name   string
	canary arm
}

func regressions() []regression {
	with := func(f func(*arm)) arm { a := base; f(&a); return a }
	return []regression{
		{"errors 1% → 3% (δ 1 pp)", with(func(a *arm) { a.errRate = 0.03 })},
		{"errors 1% → 5% (δ 1 pp)", with(func(a *arm) { a.errRate = 0.05 })},
		{"p99 +30 ms (δ 0)", with(func(a *arm) { a.shift = 30 * time.Millisecond })},
	}
}
