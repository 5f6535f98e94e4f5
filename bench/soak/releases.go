package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/strategy"
)

// kind is one strategy the releases take in turn, and how a bad release
// of it fails.
type kind struct {
	name, strategy string
	fault          string // the bad release's env entries
}

var kinds = []kind{
	{strategy.BlueGreen, "blueGreen: {autoPromote: true}", `FAULT_CRASH_AFTER: "4s"`},
	{strategy.Canary, "canary: {steps: [{setWeight: 25}, {pause: {for: 3s}}, {setWeight: 50}, {pause: {for: 3s}}]}", `FAULT_ERROR_RATE: "0.5"`},
	{strategy.Rolling, "rolling: {maxSurge: 1, maxUnavailable: 0}", `FAULT_NEVER_READY: "1"`},
}

// badEvery: release n is bad when n is a multiple of it; as it is prime
// to len(kinds), every kind has its bad releases.
const badEvery = 5

// history is the manifest's history: small, so that pruning (revisions,
// artifacts, log folders, /metrics series) runs from the 6th release on.
const history = 5

// manifest is release n of the app: the sample app with n in its
// environment (so each release is a new revision), an error-rate check, a
// 20 s rollback window and a 15 s progress deadline (so that a release
// settles well within a minute), and history revisions kept. The readiness probe forgives 750 ms of
// timeouts, as on a busy machine the other benchmarks' do.
func manifest(a *harness.App, n int, k kind, bad bool) string {
	env := fmt.Sprintf(`{RELEASE: "%d"}`, n)
	if bad {
		env = fmt.Sprintf(`{RELEASE: "%d", %s}`, n, k.fault)
	}
	return fmt.Sprintf(`name: %s
listen: %s
replicas: 2
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: %s
history: %d
probes:
  readiness: {http: /healthz, period: 250ms, timeout: 250ms, failureThreshold: 3}
strategy:
  %s
analysis:
  alpha: 0.001
  checks:
    - name: errors
      compare: {metric: errorRate, maxIncrease: 0.05}
rollback:
  progressDeadline: 15s
  window: 20s
`, a.Name, a.Listen, env, history, k.strategy)
}

// release is one release applied during the soak and how it ended.
type release struct {
	N       int
	Kind    string
	Bad     bool
	At      time.Duration // applied, since the load started
	Rollout int64
	// Revision is the revision the release created.
	Revision int
	// Phase and Trigger say how the rollout ended ("" while it had not
	// when the next release was due); Err is why the apply or the wait
	// failed.
	Phase, Trigger, Reason string
	Took                   time.Duration // apply → end of the rollout
	// Final and FinalTrigger are how it stood at the end of the soak
	// (after its window).
	Final, FinalTrigger string
	Err                 string
}

// releases is the list the release loop fills and the sampler reads.
type releases struct {
	mu   sync.Mutex
	list []release
}

func (rs *releases) add(r release) {
	rs.mu.Lock()
	rs.list = append(rs.list, r)
	rs.mu.Unlock()
}

func (rs *releases) all() []release {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]release(nil), rs.list...)
}

// soak delivers the first release, starts the load and the sampler, and
// applies a release every cfg.every until cfg.duration has passed.
func soak(ctx context.Context, cfg config, b *harness.Bench, r *report, progress io.Writer) error {
	a, err := harness.NewApp(filepath.Join(b.Root, "apps"), "web", b.Bins.SampleApp)
	if err != nil {
		return err
	}
	res, err := a.Apply(ctx, b.Client, manifest(a, 0, kinds[0], false), "first release")
	if err != nil {
		return err
	}
	if err := harness.WaitPromoted(ctx, b.Client, a.Name, res.Rollout); err != nil {
		return fmt.Errorf("first release: %w", err)
	}
	r.agg = newAggregate(cfg.duration)
	var phase harness.Phase
	phase.Set("soak")
	load := harness.StartLoadTo(ctx, a.Listen, cfg.rate, cfg.workers, &phase, r.agg.add)
	start := time.Now()
	r.LoadStart = start
	if r.CPU, err = harness.StartCPU(b.Server.PID()); err != nil {
		return err
	}
	sctx, stopSampler := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s := &sampler{pid: b.Server.PID(), base: b.Server.Base, data: filepath.Join(b.Root, "data"), app: a.Name, agg: r.agg, start: start}
	wg.Go(func() { s.run(sctx, cfg.sample, progress) })
	defer func() {
		stopSampler()
		wg.Wait()
		r.Samples = s.samples
		run := load.Stop()
		r.Elapsed = run.Elapsed
		if err := r.CPU.Stop(); err != nil {
			r.CPU = nil
		}
	}()

	rs := &r.rels
	for n := 1; ; n++ {
		due := start.Add(time.Duration(n-1) * cfg.every)
		if !due.Before(start.Add(cfg.duration)) {
			break
		}
		if err := harness.Sleep(ctx, time.Until(due)); err != nil {
			return err
		}
		k := kinds[(n-1)%len(kinds)]
		rel := release{N: n, Kind: k.name, Bad: n%badEvery == 0, At: time.Since(start)}
		rel.apply(ctx, b, a, k, min(cfg.every-time.Second, start.Add(cfg.duration).Sub(time.Now())))
		rs.add(rel)
		fmt.Fprintf(progress, "soak bench: %s release %d %s%s: %s %s (%s)%s\n", rel.At.Round(time.Second), n, k.name,
			map[bool]string{true: " (bad)"}[rel.Bad], rel.Phase, rel.Trigger, rel.Took.Round(100*time.Millisecond),
			map[bool]string{true: " error: " + rel.Err}[rel.Err != ""])
	}
	if err := harness.Sleep(ctx, time.Until(start.Add(cfg.duration))); err != nil {
		return err
	}
	return finalOutcomes(ctx, b, a.Name, rs)
}

// finalOutcomes reads how every release's rollout finally ended: a
// release promoted when the loop looked may have been rolled back inside
// its window since.
func finalOutcomes(ctx context.Context, b *harness.Bench, app string, rs *releases) error {
	ros, err := b.Client.Rollouts(ctx, app)
	if err != nil {
		return fmt.Errorf("rollouts: %w", err)
	}
	byID := map[int64]int{}
	for i, ro := range ros {
		byID[ro.ID] = i
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i := range rs.list {
		rel := &rs.list[i]
		if j, ok := byID[rel.Rollout]; ok && rel.Rollout != 0 {
			rel.Final, rel.FinalTrigger = ros[j].Phase, ros[j].Trigger
		}
	}
	return nil
}

// apply applies the release and waits, for at most limit, until its
// rollout has ended.
func (rel *release) apply(ctx context.Context, b *harness.Bench, a *harness.App, k kind, limit time.Duration) {
	t0 := time.Now()
	res, err := a.Apply(ctx, b.Client, manifest(a, rel.N, k, rel.Bad), fmt.Sprintf("release %d", rel.N))
	if err != nil {
		rel.Err = err.Error()
		return
	}
	rel.Rollout, rel.Revision = res.Rollout, res.Revision
	end, err := harness.WaitEnded(ctx, b.Client, a.Name, res.Rollout, max(limit, time.Second))
	if err != nil {
		rel.Err = err.Error()
		return
	}
	rel.Took = time.Since(t0)
	rel.Phase, rel.Trigger, rel.Reason = end.Phase, end.Trigger, end.Reason
}
