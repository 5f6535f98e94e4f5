// Command rollback measures how fast lastgood takes traffic back from a
// bad canary by itself, and how many requests the canary answered (and
// failed) meanwhile. Against a real `lastgood serve` subprocess it offers
// an open-loop load to an app whose stable revision fails 1% of requests,
// then, round after round, applies a canary revision that fails 20% of
// them with a 20% traffic weight and a live error-rate comparison, and
// waits for lastgood to roll it back. Every response is recorded with its
// time, status and Lastgood-Revision header; the rollback is measured from
// the client's side (first to last answer from the canary) and checked
// against lastgood's own events. It prints a Markdown report
// (bench/rollback/RESULTS.md holds one):
//
//	go run ./bench/rollback [-rollouts 20] [-rate 200] [-intervals 100ms,1s] [-out FILE]
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
	"strings"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// config is the command line.
type config struct {
	rollouts  int
	rate      float64
	workers   int
	intervals []time.Duration
	settle    time.Duration
	timeout   time.Duration
	keep      bool
	out       string
}

func main() {
	var cfg config
	intervals := "100ms,1s"
	flag.IntVar(&cfg.rollouts, "rollouts", 20, "bad canaries per router interval, each rolled back by lastgood")
	flag.Float64Var(&cfg.rate, "rate", 200, "load: requests per second, open loop")
	flag.IntVar(&cfg.workers, "workers", 32, "load: concurrent senders (and at most as many keep-alive connections)")
	flag.StringVar(&intervals, "intervals", intervals, "analysis.routerInterval of the canaries (how often their compare check looks), comma-separated; one row of results each")
	flag.DurationVar(&cfg.settle, "settle", 2*time.Second, "pause after each rollback before the next canary")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, logs) for inspection")
	flag.StringVar(&cfg.out, "out", "", "write the report to this file instead of stdout")
	flag.Parse()
	for _, s := range strings.Split(intervals, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "rollback bench: -intervals: %q is not a positive duration\n", s)
			os.Exit(2)
		}
		cfg.intervals = append(cfg.intervals, d)
	}
	if cfg.rollouts < 1 || cfg.rate <= 0 || cfg.workers < 1 || cfg.settle < 0 {
		fmt.Fprintln(os.Stderr, "rollback bench: -rollouts, -rate and -workers must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	err := run(ctx, cfg, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollback bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, progress io.Writer) (err error) {
	b, err := harness.Start(ctx, "rollback", cfg.keep, progress)
	if err != nil {
		return err
	}
	defer func() { err = b.Close(err) }()
	r := &report{cfg: cfg, Started: time.Now()}
	measureErr := measure(ctx, cfg, b, r, progress)
	if ctx.Err() != nil {
		return measureErr // interrupted: no report
	}
	r.LeftAfterStop, r.StopError = b.Server.Shutdown()
	r.Ended = time.Now()
	if measureErr != nil {
		// A rollout that did not end as it should is a result too: it is
		// written into the report, and the run fails.
		r.RunError = measureErr.Error()
	}
	if err := r.writeTo(cfg.out); err != nil {
		return err
	}
	return measureErr
}
