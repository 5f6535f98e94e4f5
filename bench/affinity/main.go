// Command affinity measures the A/A false-fail rate of an error-rate
// compare check when session affinity keeps each client on one revision,
// before and after the design-effect correction (judge.DesignEffect,
// judge.Deflated), on the same simulated rollouts: clients differ (most
// fail 0.5% of their requests, one in ten fails 10%), a session is a
// geometric number of requests (mean 40), 20% of sessions go to the
// canary, and both revisions are identical. A third arm sends each
// request to a revision on its own (no affinity): the independent case
// the test was built for. It also measures the cost: how many bad
// canaries (every client's error rate +2 points) each arm catches and
// after how many canary requests.
//
//	go run ./bench/affinity [-rollouts 2000] [-seed 1] [-out bench/affinity/RESULTS.md]
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/router"
)

const (
	alpha       = 0.005 // the check's share of α, as in issue 10's report
	maxIncrease = 0.002
	canaryShare = 0.2
	looks       = 60
	perLook     = 40 // sessions per look
	meanLength  = 40 // requests per session
	buckets     = router.SessionBuckets
)

type arm int

const (
	independent arm = iota // no affinity: each request picks a revision
	raw                    // affinity, the test on raw counts (before)
	corrected              // affinity, counts deflated by the design effect (after)
)

var armNames = []string{"no affinity (requests independent)", "affinity, raw counts (before)", "affinity, design-effect correction (after)"}

type outcome struct {
	failed bool
	at     uint64 // canary requests at the failure
	phi    float64
}

// rollout simulates one rollout of every arm on the same clients and
// sessions. bad adds to every canary client's error rate.
func rollout(seed uint64, r int, bad float64) [3]outcome {
	rng := rand.New(rand.NewPCG(seed, uint64(r)))
	check := judge.Compare{Check: "errors", Metric: judge.ErrorRate, MaxIncrease: maxIncrease}
	var out [3]outcome
	var states [3]judge.RateState
	type rev struct {
		total   judge.Counts
		buckets []judge.Counts
		next    int
	}
	var aff [2]rev // 0 stable, 1 canary
	for i := range aff {
		aff[i].buckets = make([]judge.Counts, buckets)
	}
	var ind [2]judge.Counts
	var defl [2]judge.Deflated
	for range looks {
		for range perLook {
			p := 0.005
			if rng.Float64() < 0.1 {
				p = 0.1
			}
			n := 1 + int(math.Floor(math.Log(rng.Float64())/math.Log(1-1.0/meanLength)))
			toCanary := rng.Float64() < canaryShare
			side := 0
			if toCanary {
				side = 1
			}
			b := aff[side].next % buckets
			aff[side].next++
			for range n {
				// Affinity: the whole session on one side.
				pe := p
				if toCanary {
					pe += bad
				}
				fail := rng.Float64() < pe
				aff[side].total.Requests++
				aff[side].buckets[b].Requests++
				if fail {
					aff[side].total.Errors++
					aff[side].buckets[b].Errors++
				}
				// Independent: the same client, each request on its own.
				is := 0
				pi := p
				if rng.Float64() < canaryShare {
					is, pi = 1, p+bad
				}
				ind[is].Requests++
				if rng.Float64() < pi {
					ind[is].Errors++
				}
			}
		}
		phi := judge.DesignEffect(aff[0].buckets, aff[1].buckets)
		obs := [3][2]judge.Counts{
			independent: ind,
			raw:         {aff[0].total, aff[1].total},
			corrected:   {defl[0].Step(aff[0].total, phi), defl[1].Step(aff[1].total, phi)},
		}
		for a := range out {
			if out[a].failed {
				continue
			}
			o := judge.Observation{
				Stable: judge.Sample{Requests: obs[a][0].Requests, Errors: obs[a][0].Errors},
				Canary: judge.Sample{Requests: obs[a][1].Requests, Errors: obs[a][1].Errors},
			}
			var res judge.Result
			states[a], res = check.Judge(states[a], o, alpha)
			if res.Verdict == judge.Fail {
				canary := aff[1].total.Requests
				if arm(a) == independent {
					canary = ind[1].Requests
				}
				out[a] = outcome{failed: true, at: canary, phi: phi}
			}
		}
		out[corrected].phi = phi
	}
	return out
}

func simulate(rollouts int, seed uint64, bad float64) (fails [3]int, at [3][]uint64, phis []float64) {
	results := make([][3]outcome, rollouts)
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for r := range work {
				results[r] = rollout(seed, r, bad)
			}
		})
	}
	for r := range rollouts {
		work <- r
	}
	close(work)
	wg.Wait()
	for _, res := range results {
		for a, o := range res {
			if o.failed {
				fails[a]++
				at[a] = append(at[a], o.at)
			}
		}
		phis = append(phis, res[corrected].phi)
	}
	return fails, at, phis
}

// wilson is the 95% Wilson score interval of k successes in n.
func wilson(k, n int) (lo, hi float64) {
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	c := (p + z*z/(2*nf)) / (1 + z*z/nf)
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / (1 + z*z/nf)
	return max(0, c-h), min(1, c+h)
}

func median(xs []uint64) uint64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func run() error {
	rollouts := flag.Int("rollouts", 2000, "simulated rollouts per scenario")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", "", "write the report here (default stdout)")
	flag.Parse()
	start := time.Now()
	aaFails, _, phis := simulate(*rollouts, *seed, 0)
	badFails, badAt, _ := simulate(*rollouts, *seed+1000, 0.02)
	slices.Sort(phis)
	var b strings.Builder
	fmt.Fprintf(&b, "# Session affinity: A/A false fails before and after the design-effect correction\n\n")
	fmt.Fprintf(&b, "`go run ./bench/affinity -rollouts %d -seed %d` — %s, GOMAXPROCS %d, %s; %s.\n\n",
		*rollouts, *seed, runtime.Version(), runtime.GOMAXPROCS(0), runtime.GOARCH, time.Since(start).Round(time.Second))
	fmt.Fprintf(&b, "Each rollout: %d looks of %d new sessions (geometric length, mean %d requests); %.0f%% of sessions on the canary; "+
		"nine clients in ten fail 0.5%% of their requests, one in ten 10%%; one errorRate compare check, maxIncrease %g, α = %g "+
		"(the check's share, as in issue 10's report); %d session buckets per revision. The three arms see the same clients in every rollout.\n\n",
		looks, perLook, meanLength, 100*canaryShare, maxIncrease, alpha, buckets)
	fmt.Fprintf(&b, "| arm | A/A false fails (of %d) | rate [95%% interval] | ÷ α | bad canary (+2 points) caught | median canary requests to catch |\n|---|---|---|---|---|---|\n", *rollouts)
	for a := range armNames {
		lo, hi := wilson(aaFails[a], *rollouts)
		fmt.Fprintf(&b, "| %s | %d | %.2f%% [%.2f%%, %.2f%%] | %.2f | %d of %d | %d |\n", armNames[a], aaFails[a],
			100*float64(aaFails[a])/float64(*rollouts), 100*lo, 100*hi, float64(aaFails[a])/float64(*rollouts)/alpha,
			badFails[a], *rollouts, median(badAt[a]))
	}
	fmt.Fprintf(&b, "\nMeasured design effect φ at the end of the A/A rollouts (the 90%% upper bound the correction uses): median %.2f, 5%% %.2f, 95%% %.2f.\n",
		phis[len(phis)/2], phis[len(phis)/20], phis[len(phis)*19/20])
	if *out == "" {
		fmt.Print(b.String())
		return nil
	}
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "affinity:", err)
		os.Exit(1)
	}
}
