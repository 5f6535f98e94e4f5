// Command releases puts A/A releases through the real binary while the
// load changes after each promotion, and counts the false rollbacks over
// the rollout and its rollback window. Against a `lastgood serve`
// subprocess it runs two apps of the sample app (1% errors) under an
// open-loop load each, and a third, the neighbour, on the same machine.
// Round after round it applies to each app a new revision identical to
// the last (only a ROUND value and the error generator's seed differ) as a
// canary of 10% then 50%, 30 s analyze steps each, judged by two compare
// checks (errorRate maxIncrease 0.01, latencyP99 maxIncrease 0) with the
// default rollback.holdback, and waits through the rollback window.
// Inside each window, at random moments, the load on the app triples for
// 20 s (a surge), two processes spin on the CPU for 30 s (contention), and
// the neighbour's load surges tenfold for 30 s. It prints a Markdown
// report (bench/window/releases/RESULTS.md holds one):
//
//	go run ./bench/window/releases [-rounds 10] [-rate 150] [-window 3m] [-seed 1] [-out FILE]
//
// Run by hand: 20 releases take about 50 minutes. It builds lastgood and
// the sample app into a temporary directory, stops lastgood (and so every
// replica) and every burner when it ends, is interrupted or fails, and
// removes that directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

type config struct {
	rounds   int
	rate     float64
	window   time.Duration
	seed     uint64
	keep     bool
	out      string
	timeout  time.Duration
	latency  string // latencyP99's maxIncrease
	probe    string // the readiness probe's period (and so its timeout)
	holdback string // rollback.holdback, "" for the default
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 10, "A/A releases per app (two apps: twice as many releases)")
	flag.Float64Var(&cfg.rate, "rate", 150, "each app's load in calm conditions, requests per second")
	flag.DurationVar(&cfg.window, "window", 3*time.Minute, "rollback.window of every release (shorter than the 10m default, to fit 20 releases in an hour)")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the episodes' times")
	flag.StringVar(&cfg.latency, "latency-tolerance", "0s", "the latencyP99 check's maxIncrease")
	flag.StringVar(&cfg.holdback, "holdback", "", "rollback.holdback (empty: the default)")
	flag.StringVar(&cfg.probe, "probe-period", "1s", "the readiness probe's period, and so its timeout (the defaults: 1s, 3 failures in a row)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, logs) for inspection")
	flag.StringVar(&cfg.out, "out", "", "write the report to this file instead of stdout")
	flag.DurationVar(&cfg.timeout, "timeout", 3*time.Hour, "give up after this long")
	flag.Parse()
	if cfg.rounds < 1 || cfg.rate <= 0 || cfg.window < 2*time.Minute {
		fmt.Fprintln(os.Stderr, "releases: -rounds and -rate must be positive and -window at least 2m")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	err := run(ctx, cfg, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "releases:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, progress io.Writer) (err error) {
	b, err := harness.Start(ctx, "releases", cfg.keep, progress)
	if err != nil {
		return err
	}
	defer func() { err = b.Close(err) }()
	r := &report{cfg: cfg, Started: time.Now()}
	runErr := releases(ctx, cfg, b, r, progress)
	if ctx.Err() != nil {
		return runErr
	}
	r.Ended = time.Now()
	if runErr != nil {
		r.RunError = runErr.Error()
	}
	if err := r.writeTo(cfg.out); err != nil {
		return err
	}
	return runErr
}

// manifest is one app's manifest: the sample app failing 1% of requests
// with a seed of its own, and the release's strategy and checks.
func manifest(cfg config, a *harness.App, round int) string {
	env := fmt.Sprintf(`{FAULT_ERROR_RATE: "0.01", FAULT_SEED: "%d", ROUND: "%d"}`, 100*round+len(a.Name), round)
	holdback := ""
	if cfg.holdback != "" {
		holdback = "\n  holdback: " + cfg.holdback
	}
	return fmt.Sprintf(`name: %s
listen: %s
replicas: 2
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: %s
probes:
  readiness: {http: /healthz, period: %s}
`, a.Name, a.Listen, env, cfg.probe) + fmt.Sprintf(`strategy:
  canary:
    steps: [{setWeight: 10}, {analyze: {for: 30s}}, {setWeight: 50}, {analyze: {for: 30s}}]
analysis:
  checks:
    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}
    - {name: latency, compare: {metric: latencyP99, maxIncrease: %s}}
rollback:
  window: %s%s
`, cfg.latency, cfg.window, holdback)
}

// release is one A/A release as the benchmark drove it and lastgood ended
// it.
type release struct {
	App      string
	Round    int
	Revision int
	From     int // the revision it was released from: the stable, warm through the window
	Rollout  int64
	Applied  time.Time
	Promoted time.Time // zero when it was not
	Ended    time.Time // the rollout's window ended, or it was rolled back
	Phase    string
	Trigger  string
	Reason   string
	InWindow bool
	Holdback int // the share held back, from the rollout's state
	// Episodes are what the benchmark did to the machine in the window.
	Episodes []episode
	// Served is the answers the load saw per revision between promotion
	// and the end, and Failed those that failed.
	Served, Failed map[int]int
}

// episode is one load change: what, and when it started and ended.
type episode struct {
	What       string
	Start, End time.Time
}

func (r release) falseRollback() bool { return r.Phase == string(strategy.RolledBack) }

func releases(ctx context.Context, cfg config, b *harness.Bench, r *report, progress io.Writer) error {
	c := b.Client
	root := filepath.Join(b.Root, "apps")
	neighbour, err := harness.NewApp(root, "neighbour", b.Bins.SampleApp)
	if err != nil {
		return err
	}
	res, err := neighbour.Apply(ctx, c, neighbour.Manifest(`{}`, ""), "neighbour")
	if err != nil {
		return err
	}
	if err := harness.WaitPromoted(ctx, c, neighbour.Name, res.Rollout); err != nil {
		return err
	}
	var apps []*harness.App
	for _, name := range []string{"a", "b"} {
		a, err := harness.NewApp(root, name, b.Bins.SampleApp)
		if err != nil {
			return err
		}
		res, err := a.Apply(ctx, c, manifest(cfg, a, 0), "first release")
		if err != nil {
			return err
		}
		if err := harness.WaitPromoted(ctx, c, a.Name, res.Rollout); err != nil {
			return err
		}
		apps = append(apps, a)
	}
	var ph harness.Phase
	ph.Set("load")
	loads := map[string]*harness.Load{}
	for _, a := range apps {
		loads[a.Name] = harness.StartLoad(ctx, a.Listen, cfg.rate, 32, &ph)
	}
	quiet := harness.StartLoad(ctx, neighbour.Listen, 50, 16, &ph)
	defer func() {
		quiet.Stop()
		for _, a := range apps {
			r.Loads = append(r.Loads, namedRun{a.Name, loads[a.Name].Stop()})
		}
	}()
	if err := harness.Sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(apps))
	for i, a := range apps {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)))
			for round := 1; round <= cfg.rounds && ctx.Err() == nil; round++ {
				rel, err := oneRelease(ctx, cfg, c, b, a, neighbour, round, rng)
				mu.Lock()
				r.Releases = append(r.Releases, rel)
				mu.Unlock()
				fmt.Fprintf(progress, "releases: %s round %d: %s %s %s\n", a.Name, round, rel.Phase, rel.Trigger, rel.Reason)
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// oneRelease applies an A/A revision of a, waits for its promotion (or a
// rollback), stirs the machine during its window and waits for the window
// to end (or a rollback).
func oneRelease(ctx context.Context, cfg config, c *api.Client, b *harness.Bench, a, neighbour *harness.App, round int, rng *rand.Rand) (release, error) {
	rel := release{App: a.Name, Round: round}
	res, err := a.Apply(ctx, c, manifest(cfg, a, round), fmt.Sprintf("ROUND=%d", round))
	if err != nil {
		return rel, err
	}
	rel.Revision, rel.Rollout, rel.Applied = res.Revision, res.Rollout, time.Now()
	st, err := poll(ctx, c, a.Name, 5*time.Minute, "promotion or rollback", func(st controller.AppStatus) bool {
		ro := st.Rollout
		return ro != nil && ro.ID == res.Rollout && strategy.Phase(ro.Phase).Final()
	})
	if err != nil {
		return rel, err
	}
	rel.From = st.Rollout.Detail.From
	if st.Rollout.Phase == string(strategy.Promoted) {
		rel.Promoted = time.Now()
		rel.Holdback = st.Rollout.Detail.Holdback
		// Stir the machine inside the window, each episode at its own
		// random moment, while waiting for the window to end.
		ectx, stopEpisodes := context.WithCancel(ctx)
		var ewg sync.WaitGroup
		var emu sync.Mutex
		span := cfg.window - 40*time.Second
		for _, ep := range []struct {
			what string
			d    time.Duration
			do   func(ctx context.Context, d time.Duration)
		}{
			{"surge ×3, 20 s", 20 * time.Second, func(ctx context.Context, d time.Duration) { surge(ctx, a.Listen, 2*cfg.rate, d) }},
			{"CPU contention, 2 spinning processes, 30 s", 30 * time.Second, spin},
			{"neighbour's surge ×10, 30 s", 30 * time.Second, func(ctx context.Context, d time.Duration) { surge(ctx, neighbour.Listen, 450, d) }},
		} {
			at := time.Duration(rng.Int64N(int64(span - ep.d)))
			ewg.Go(func() {
				if harness.Sleep(ectx, at) != nil {
					return
				}
				e := episode{What: ep.what, Start: time.Now()}
				ep.do(ectx, ep.d)
				e.End = time.Now()
				emu.Lock()
				rel.Episodes = append(rel.Episodes, e)
				emu.Unlock()
			})
		}
		st, err = poll(ctx, c, a.Name, cfg.window+time.Minute, "the end of the window", func(st controller.AppStatus) bool {
			d := st.Rollout.Detail
			return st.Rollout.ID != res.Rollout || d.Phase != strategy.Promoted || d.FromReplicas == 0
		})
		stopEpisodes()
		ewg.Wait()
		if err != nil {
			return rel, err
		}
	}
	rel.Ended = time.Now()
	d := st.Rollout.Detail
	rel.Phase, rel.Trigger, rel.Reason, rel.InWindow = string(d.Phase), d.Trigger, d.Reason, d.InWindow
	return rel, nil
}

// surge offers rate more requests per second to addr for d.
func surge(ctx context.Context, addr string, rate float64, d time.Duration) {
	var ph harness.Phase
	ld := harness.StartLoad(ctx, addr, rate, 64, &ph)
	harness.Sleep(ctx, d)
	ld.Stop()
}

// spin runs two processes that spin on the CPU for d, in their own
// process group, and kills them after.
func spin(ctx context.Context, d time.Duration) {
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if cmd.Start() == nil {
			cmds = append(cmds, cmd)
		}
	}
	harness.Sleep(ctx, d)
	for _, cmd := range cmds {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

// poll reads the app's status every 250 ms until ok holds, for at most
// limit (harness.WaitFor polls every 10 ms, too often for minutes of
// waiting beside the load).
func poll(ctx context.Context, c *api.Client, app string, limit time.Duration, what string, ok func(controller.AppStatus) bool) (controller.AppStatus, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := c.App(ctx, app)
		if err != nil {
			return st, fmt.Errorf("status of %s: %w", app, err)
		}
		if ok(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s: %s not reached within %s", app, what, limit)
		}
		if err := harness.Sleep(ctx, 250*time.Millisecond); err != nil {
			return st, err
		}
	}
}
