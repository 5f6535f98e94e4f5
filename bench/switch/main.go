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
	root, err := os.MkdirTemp("", "lastgood-switch-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		defer fmt.Fprintln(progress, "switch bench: kept", root)
	} else {
		defer os.RemoveAll(root)
	}
	fmt.Fprintln(progress, "switch bench: building lastgood and the sample app")
	bins, err := build(ctx, root)
	if err != nil {
		return err
	}
	logPath := filepath.Join(root, "serve.log")
	srv, err := startServe(ctx, bins.lastgood, filepath.Join(root, "data"), logPath)
	if err != nil {
		return err
	}
	defer func() {
		srv.stop()
		if err != nil {
			err = fmt.Errorf("%w\nlast lines of lastgood's log:\n%s", err, tail(logPath, 20))
		}
	}()
	r := &report{Rate: cfg.rate, Workers: cfg.workers, Switches: cfg.switches, Started: time.Now()}
	if err := measure(ctx, cfg, srv, bins, root, r, progress); err != nil {
		return err
	}
	kids, err := children(srv.pid())
	if err != nil {
		return err
	}
	if err := srv.stop(); err != nil {
		r.ServeStopErrors = err.Error()
	}
	r.LeftAfterStop = alive(kids)
	r.Ended = time.Now()
	r.write(out)
	return nil
}

// warmup is the load's first part, before any switch, not counted in
// its latency.
const warmup = 2 * time.Second

// measure runs the phases under load and fills r.
func measure(ctx context.Context, cfg config, srv *server, bins binaries, root string, r *report, progress io.Writer) error {
	c := &api.Client{Base: srv.base}
	apps := filepath.Join(root, "apps")
	a, err := newBenchApp(apps, "web", bins.sampleApp)
	if err != nil {
		return err
	}
	res, err := a.apply(ctx, c, 0)
	if err != nil {
		return err
	}
	if err := waitPromoted(ctx, c, a.name, res.Rollout); err != nil {
		return fmt.Errorf("first release: %w", err)
	}
	if r.Idle, err = readMemory(srv.pid()); err != nil {
		return err
	}

	cpu, err := startCPU(srv.pid())
	if err != nil {
		return err
	}
	var ph phase
	ld := startLoad(ctx, a.listen, cfg.rate, cfg.workers, warmup, &ph)
	stopped := false
	defer func() {
		if !stopped {
			ld.stop()
		}
	}()
	ph.set("warm-up")
	if err := sleep(ctx, warmup); err != nil {
		return err
	}
	p := newProber(a.listen)
	defer p.hc.CloseIdleConnections()
	fmt.Fprintf(progress, "switch bench: %d switches and undos under %g requests/s\n", cfg.switches, cfg.rate)
	if r.Run, err = runSwitches(ctx, c, a, p, &ph, cfg.switches, progress); err != nil {
		return err
	}
	if r.WarmUndos, err = warmUndos(ctx, c, a.name); err != nil {
		return err
	}
	if r.Switched, err = readMemory(srv.pid()); err != nil {
		return err
	}
	fmt.Fprintf(progress, "switch bench: deploying %d more apps\n", cfg.apps-1)
	if r.Fleet, err = deployFleet(ctx, c, apps, bins.sampleApp, cfg.apps-1, &ph, srv.pid()); err != nil {
		return err
	}
	ph.set("cool-down")
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	r.Load, stopped = ld.stop(), true
	if err := cpu.stop(); err != nil {
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

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
