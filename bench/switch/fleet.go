package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
)

// fleetResult is lastgood's memory with many apps running.
type fleetResult struct {
	Apps         int
	Replicas     int // lastgood's child processes when measured
	Lastgood     harness.Memory
	ReplicaRSS   int64         // sum of the replicas' VmRSS
	Stopping     int           // replicas stopping when the fleet was up
	StoppingWait time.Duration // until none was
	TrafficSent  int           // requests sent to the extra apps
	TrafficFails []failure
}

// deployFleet deploys more apps (each on its own address, two replicas),
// waits until every first release is promoted, sends each a little
// traffic, and measures lastgood's resident set and its replicas'.
func deployFleet(ctx context.Context, c *api.Client, root, sampleApp string, more int, ph *harness.Phase, pid int) (fleetResult, error) {
	r := fleetResult{Apps: more + 1}
	ph.Set("deploying %d more apps", more)
	var apps []*harness.App
	var rollouts []int64
	for i := range more {
		a, err := harness.NewApp(root, fmt.Sprintf("extra-%d", i+1), sampleApp)
		if err != nil {
			return r, err
		}
		res, err := apply(ctx, c, a, 0)
		if err != nil {
			return r, err
		}
		apps, rollouts = append(apps, a), append(rollouts, res.Rollout)
	}
	for i, a := range apps {
		if err := harness.WaitPromoted(ctx, c, a.Name, rollouts[i]); err != nil {
			return r, fmt.Errorf("first release of %s: %w", a.Name, err)
		}
	}
	ph.Set("traffic to the %d extra apps", more)
	for _, a := range apps {
		p := newProber(a.Listen)
		for range 100 {
			if _, err := p.get(ctx); err != nil {
				r.TrafficFails = append(r.TrafficFails, failure{Phase: ph.String(), What: a.Name + ": " + err.Error()})
			}
			r.TrafficSent++
		}
		p.hc.CloseIdleConnections()
	}
	var err error
	if r.Stopping, r.StoppingWait, err = waitNoneStopping(ctx, c); err != nil {
		return r, err
	}
	if r.Lastgood, err = harness.ReadMemory(pid); err != nil {
		return r, err
	}
	kids, err := harness.Children(pid)
	if err != nil {
		return r, err
	}
	r.Replicas = len(kids)
	for _, k := range kids {
		if m, err := harness.ReadMemory(k); err == nil {
			r.ReplicaRSS += m.RSS
		}
	}
	return r, nil
}

// waitNoneStopping waits until no replica of any app is stopping, so that
// the memory read counts what runs for good: a stopped replica of the
// sample app takes about 5s to exit (see RESULTS.md).
// It returns how many were stopping at first and how long it waited.
func waitNoneStopping(ctx context.Context, c *api.Client) (int, time.Duration, error) {
	start := time.Now()
	first := -1
	for {
		apps, err := c.Apps(ctx)
		if err != nil {
			return first, 0, fmt.Errorf("list apps: %w", err)
		}
		stopping := 0
		for _, a := range apps {
			for _, r := range a.Replicas {
				if r.Stopping {
					stopping++
				}
			}
		}
		if first < 0 {
			first = stopping
		}
		if stopping == 0 {
			return first, time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return first, 0, fmt.Errorf("%d replicas still stopping after a minute", stopping)
		}
		if err := harness.Sleep(ctx, 100*time.Millisecond); err != nil {
			return first, 0, err
		}
	}
}
