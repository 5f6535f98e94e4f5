// Command switch measures what lastgood's traffic switches cost its
// clients. In one run against a real `lastgood serve` subprocess it offers
// an open-loop load to an app, makes blue-green switches and warm undos
// under that load, times how soon each becomes visible to a client, and
// reads lastgood's memory with ten apps running. It prints a Markdown
// report (bench/switch/RESULTS.md holds one):
//
//	go run ./bench/switch [-switches 100] [-rate 1000]
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
)

// config is the command line.
type config struct {
	switches int
	rate     float64
	workers  int
	apps     int
	timeout  time.Duration
	keep     bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.switches, "switches", 100, "blue-green switches, each followed by an undo")
	flag.Float64Var(&cfg.rate, "rate", 1000, "load: requests per second, open loop")
	flag.IntVar(&cfg.workers, "workers", 64, "load: concurrent senders (and at most as many keep-alive connections)")
	flag.IntVar(&cfg.apps, "apps", 10, "apps running when lastgood's memory is measured")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, logs) for inspection")
	flag.Parse()
	if cfg.switches < 1 || cfg.rate <= 0 || cfg.workers < 1 || cfg.apps < 1 {
		fmt.Fprintln(os.Stderr, "switch bench: -switches, -rate, -workers and -apps must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switch bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out, progress io.Writer) (err error) {
	b, err := harness.Start(ctx, "switch", cfg.keep, progress)
	if err != nil {
		return err
	}
	defer func() { err = b.Close(err) }()
	r := &report{Rate: cfg.rate, Workers: cfg.workers, Switches: cfg.switches, Started: time.Now()}
	if err := measure(ctx, cfg, b, r, progress); err != nil {
		return err
	}
	left, stopErr := b.Server.Shutdown()
	if stopErr != nil {
		r.ServeStopErrors = stopErr.Error()
	}
	r.LeftAfterStop = left
	r.Ended = time.Now()
	r.write(out)
	return nil
}

// warmup is the load's first part, before any switch, not counted in
// its latency.
const warmup = 2 * time.Second

// measure runs the phases under load and fills r.
func measure(ctx context.Context, cfg config, b *harness.Bench, r *report, progress io.Writer) error {
	c, pid := b.Client, b.Server.PID()
	apps := filepath.Join(b.Root, "apps")
	a, err := harness.NewApp(apps, "web", b.Bins.SampleApp)
	if err != nil {
		return err
	}
	res, err := apply(ctx, c, a, 0)
	if err != nil {
		return err
	}
	if err := harness.WaitPromoted(ctx, c, a.Name, res.Rollout); err != nil {
		return fmt.Errorf("first release: %w", err)
	}
	if r.Idle, err = harness.ReadMemory(pid); err != nil {
		return err
	}

	cpu, err := harness.StartCPU(pid)
	if err != nil {
		return err
	}
	var ph harness.Phase
	ld := harness.StartLoad(ctx, a.Listen, cfg.rate, cfg.workers, &ph)
	stopped := false
	defer func() {
		if !stopped {
			ld.Stop()
		}
	}()
	ph.Set("warm-up")
	if err := harness.Sleep(ctx, warmup); err != nil {
		return err
	}
	p := newProber(a.Listen)
	defer p.hc.CloseIdleConnections()
	fmt.Fprintf(progress, "switch bench: %d switches and undos under %g requests/s\n", cfg.switches, cfg.rate)
	if r.Run, err = runSwitches(ctx, c, a, p, &ph, cfg.switches, progress); err != nil {
		return err
	}
	if r.WarmUndos, err = warmUndos(ctx, c, a.Name); err != nil {
		return err
	}
	if r.Switched, err = harness.ReadMemory(pid); err != nil {
		return err
	}
	fmt.Fprintf(progress, "switch bench: deploying %d more apps\n", cfg.apps-1)
	if r.Fleet, err = deployFleet(ctx, c, apps, b.Bins.SampleApp, cfg.apps-1, &ph, pid); err != nil {
		return err
	}
	ph.Set("cool-down")
	if err := harness.Sleep(ctx, time.Second); err != nil {
		return err
	}
	r.Load, stopped = summarize(ld.Stop(), warmup), true
	if err := cpu.Stop(); err != nil {
		return err
	}
	r.CPU = *cpu
	r.ProbeFailures = p.failures
	return nil
}

// warmUndos counts the undos lastgood reports as a traffic switch to warm
// replicas (its rollout.started events say "still warm").
func warmUndos(ctx context.Context, c *api.Client, app string) (int, error) {
	evs, err := c.Events(ctx, app, 0)
	if err != nil {
		return 0, fmt.Errorf("events of %s: %w", app, err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == "rollout.started" && strings.Contains(e.Message, "still warm") {
			n++
		}
	}
	return n, nil
}
