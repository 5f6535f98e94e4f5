// Command killnine kills lastgood with SIGKILL at random moments of
// rollouts and checks what a crash must not cost. Against a real `lastgood
// serve` subprocess under an open-loop load it delivers, round after round,
// a new release of one app — blue-green, canary and rolling in turn, a few
// of them bad (replicas that exit 3 s after they start) — kills lastgood
// (only lastgood: its replicas die by their own Pdeathsig) either during
// the rollout or inside the rollback window, starts it again on the same
// data, and waits until the rollout and its window are over. Each round
// checks that
//
//   - no replica of the killed lastgood outlives it, and after the restart
//     every replica is a child of the new one (a /proc scan by a marker in
//     the replicas' environment);
//   - the decision is right: a good release promoted before the kill stays
//     promoted through its window; an unfinished one ends promoted or
//     rolled back with trigger `restart` (the documented rule), never by
//     another trigger; a bad one never ends promoted;
//   - `lastgood audit verify` is clean;
//
// and over the whole run that every failed request was in flight while no
// lastgood had the app's port bound (from the SIGKILL until the new process
// bound it). It prints a Markdown report (bench/killnine/RESULTS.md holds
// one):
//
//	go run ./bench/killnine [-rounds 100] [-rate 100] [-window 6s] [-seed N] [-out FILE]
//
// It builds lastgood and the sample app into a temporary directory, stops
// lastgood (and so every replica) when it ends, is interrupted or fails,
// and removes that directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// config is the command line.
type config struct {
	rounds  int
	rate    float64
	workers int
	window  time.Duration
	seed    uint64
	timeout time.Duration
	keep    bool
	out     string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 100, "releases, each with one kill -9 of lastgood")
	flag.Float64Var(&cfg.rate, "rate", 100, "load: requests per second, open loop")
	flag.IntVar(&cfg.workers, "workers", 32, "load: concurrent senders (and at most as many keep-alive connections)")
	flag.DurationVar(&cfg.window, "window", 6*time.Second, "rollback.window of every release")
	flag.Uint64Var(&cfg.seed, "seed", uint64(time.Now().UnixNano()), "seed of the kill moments (printed in the report, to replay a run)")
	flag.DurationVar(&cfg.timeout, "timeout", 2*time.Hour, "give up after this long")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, logs) for inspection")
	flag.StringVar(&cfg.out, "out", "", "write the report to this file instead of stdout")
	flag.Parse()
	if cfg.rounds < 1 || cfg.rate <= 0 || cfg.workers < 1 || cfg.window <= 0 {
		fmt.Fprintln(os.Stderr, "killnine bench: -rounds, -rate, -workers and -window must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	err := run(ctx, cfg, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "killnine bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, progress io.Writer) (err error) {
	b, err := harness.Start(ctx, "killnine", cfg.keep, progress)
	if err != nil {
		return err
	}
	defer func() { err = b.Close(err) }()
	r := &report{cfg: cfg, Started: time.Now(), LoadAverage: harness.LoadAverage()}
	runErr := rounds(ctx, cfg, b, r, progress)
	if ctx.Err() != nil {
		return runErr // interrupted: no report
	}
	r.LeftAfterStop, r.StopError = b.Server.Shutdown()
	r.Ended = time.Now()
	if runErr != nil {
		r.RunError = runErr.Error()
	}
	if err := r.writeTo(cfg.out); err != nil {
		return err
	}
	if runErr == nil && !r.clean() {
		return fmt.Errorf("%s", r.verdict())
	}
	return runErr
}
