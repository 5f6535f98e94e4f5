// Command soak runs lastgood for a long time under steady traffic and
// frequent rollouts and checks that what it holds does not grow: its
// resident memory, its open file descriptors, its threads and
// goroutines, its child processes and what it keeps on disk. Against a
// real `lastgood serve` subprocess it delivers the sample app, offers an
// open-loop load (1,000 req/s by default, aggregated per second as it
// arrives, nothing kept per request), applies a new release every minute
// — blue-green, canary and rolling in turn, one in five bad (a canary
// answering 50 % errors, a blue-green whose replicas exit, a rolling
// update that never gets ready), each of those rolled back — and samples
// lastgood every 5 s. At the end it writes, into -out,
//
//   - RESULTS.md: the machine, the achieved rate, failed requests, every
//     release's outcome, and a flatness verdict per measure computed from
//     the samples after warm-up (early vs late median, least-squares slope
//     per hour with its interval);
//   - soak.svg: RSS, fds and the achieved rate over time, releases marked;
//   - samples.csv: every sample.
//
// Run it from the module's root:
//
//	go run ./bench/soak [-duration 30m] [-rate 1000] [-every 1m] [-out bench/soak]
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
	duration, every, warmup, span, sample time.Duration
	rate                                  float64
	workers                               int
	keep                                  bool
	out                                   string
}

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 30*time.Minute, "how long the load runs")
	flag.Float64Var(&cfg.rate, "rate", 1000, "load: requests per second, open loop")
	flag.DurationVar(&cfg.every, "every", time.Minute, "a new release this often")
	flag.StringVar(&cfg.out, "out", "bench/soak", "directory for RESULTS.md, soak.svg and samples.csv")
	flag.IntVar(&cfg.workers, "workers", 64, "load: concurrent senders (and at most as many keep-alive connections)")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Minute, "samples before this are drawn but not judged")
	flag.DurationVar(&cfg.span, "span", 5*time.Minute, "flatness: length of the early and late stretches compared")
	flag.DurationVar(&cfg.sample, "sample", 5*time.Second, "sample lastgood this often")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, logs) for inspection")
	flag.Parse()
	if cfg.duration <= 0 || cfg.rate <= 0 || cfg.every <= 0 || cfg.workers < 1 || cfg.sample <= 0 || cfg.span <= 0 || cfg.warmup < 0 {
		fmt.Fprintln(os.Stderr, "soak bench: -duration, -rate, -every, -workers, -sample and -span must be positive, -warmup not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+15*time.Minute)
	err := run(ctx, cfg, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, progress io.Writer) (err error) {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	b, err := harness.Start(ctx, "soak", cfg.keep, progress)
	if err != nil {
		return err
	}
	defer func() { err = b.Close(err) }()
	r := &report{cfg: cfg, Started: time.Now(), LoadAvgStart: harness.LoadAverage()}
	runErr := soak(ctx, cfg, b, r, progress)
	if ctx.Err() != nil {
		return runErr // interrupted: no report
	}
	r.LoadAvgEnd = harness.LoadAverage()
	r.LeftAfterStop, r.StopError = b.Server.Shutdown()
	r.Ended = time.Now()
	if runErr != nil {
		r.RunError = runErr.Error()
	}
	if err := r.write(cfg.out); err != nil {
		return err
	}
	fmt.Fprintf(progress, "soak bench: wrote %s/RESULTS.md, soak.svg and samples.csv: %s\n", cfg.out, r.verdict())
	return runErr
}
