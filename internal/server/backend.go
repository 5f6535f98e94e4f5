package server

import (
	"context"
	"path/filepath"
	"strconv"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/engine/local"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// backend is where revisions run and how their traffic is set: the local
// engine behind lastgood's own routers, or Kubernetes.
type backend struct {
	engine  controller.Engine
	traffic controller.Traffic
	run     func(ctx context.Context) error
	changed <-chan struct{}
	// stats and samples are the router's counters (none on Kubernetes).
	stats     func(app string) []router.RevisionStats
	samples   func(app string) map[int]judge.Sample
	logs      func(app string, rev int) []string
	processes func(app string) []incident.Process
	// pruned, when set, is told the revisions history pruned, so their
	// logs and router counters go with them.
	pruned func(app string, revs []int)
	// sweep, when set, runs until ctx ends, removing pruned revisions' logs.
	sweep func(ctx context.Context) error
	// wait returns once the traffic has stopped serving, after ctx ended.
	wait func()
	// announce, when set, is told every event of the log (Kubernetes
	// Events of lastgood's decisions).
	announce func(store.Event)
	// evidence, when set, is what the engine knows of a failed revision,
	// for its incident bundle.
	evidence incident.Evidence
	// proxyErrors, when set, runs until ctx ends, recording the routers'
	// proxy errors as events.
	proxyErrors func(ctx context.Context, record func(controller.ReplicaEvent)) error
	// gitops, when set (Kubernetes), makes the App watcher of the
	// controller, once it exists.
	gitops func(ctl *controller.Controller) *kubernetes.GitOps
}

// localBackend runs replicas as processes behind one router per app. ctl
// returns the controller, made after the backend.
func localBackend(ctx context.Context, cfg Config, ctl func() *controller.Controller, arts *artifact.Store, st *store.Store) (*backend, error) {
	eng, err := local.New(local.Config{
		DataDir:   cfg.DataDir,
		StopGrace: cfg.StopGrace,
		OnEvent: func(e local.Event) {
			ctl().Record(controller.ReplicaEvent{Time: e.Time, App: e.App, Revision: e.Revision,
				Replica: e.Replica, Type: e.Type, Message: e.Message, Data: e.Data})
		},
		Drain: func(ctx context.Context, r local.Replica) { ctl().Drain(ctx, r.App, r.Addr) },
	})
	if err != nil {
		return nil, err
	}
	// Go raised the soft open-file limit to the hard one when lastgood
	// started; each app's router holds at most this share of it.
	cfg.Log.Info("router connections", "perAppAtMost", router.FileShare())
	tr := newTraffic(ctx)
	logs := filepath.Join(cfg.DataDir, "logs")
	sweeper := newLogSweeper(st, logs, cfg.Log, func(app string) []string {
		var writing []string
		for _, r := range eng.Replicas(app) {
			writing = append(writing, r.LogPath)
		}
		return writing
	})
	return &backend{
		engine:  &localEngine{Engine: eng, artifacts: arts, workRoot: filepath.Join(cfg.DataDir, "work")},
		traffic: tr,
		run:     eng.Run,
		changed: eng.Changed(),
		stats:   tr.stats,
		samples: tr.samples,
		logs: func(app string, rev int) []string {
			ps, _ := filepath.Glob(filepath.Join(logs, app, strconv.Itoa(rev), "*.log"))
			return ps
		},
		processes: func(app string) []incident.Process {
			var out []incident.Process
			for _, r := range eng.Replicas(app) {
				out = append(out, incident.Process{Revision: r.Revision, PID: r.PID})
			}
			return out
		},
		pruned: func(app string, revs []int) {
			tr.forget(app, revs)
			sweeper.prune(app)
		},
		sweep: sweeper.Run,
		wait:  tr.wait,
		proxyErrors: func(ctx context.Context, record func(controller.ReplicaEvent)) error {
			return newProxyErrors(tr, record).Run(ctx)
		},
	}, nil
}
