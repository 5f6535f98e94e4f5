// Package server wires lastgood together: the store, the artifact store,
// the local engine, one router per app, the controller and the API. Run is
// the one place where every long-lived part is started, and the context
// given to it is the one that stops them all.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/dashboard"
	"github.com/lastgood/lastgood/internal/engine/local"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/notify"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/telemetry"
)

// Config is what `lastgood serve` takes.
type Config struct {
	DataDir string // default ./.lastgood
	API     string // listen address of the API, default 127.0.0.1:7070
	Token   string // required bearer token, when set
	Version string
	Log     *slog.Logger
	// StopGrace is the time a replica gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// Listening, when set, is called with the API's address once it
	// accepts connections.
	Listening func(addr string)
}

// Run serves until ctx ends, then stops everything it started: the API,
// the routers, the controller and every replica.
func Run(ctx context.Context, cfg Config) error {
	if cfg.DataDir == "" {
		cfg.DataDir = ".lastgood"
	}
	if cfg.API == "" {
		cfg.API = "127.0.0.1:7070"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = slog.New(redact.Handler(cfg.Log.Handler())) // lastgood's own log shows no secret either
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := privateState(filepath.Join(cfg.DataDir, "state.db")); err != nil {
		return err
	}
	logs := filepath.Join(cfg.DataDir, "logs")
	pruneAllLogs(ctx, st, logs, cfg.Log)
	arts, err := artifact.Open(filepath.Join(cfg.DataDir, "artifacts"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ctl *controller.Controller
	eng, err := local.New(local.Config{
		DataDir:   cfg.DataDir,
		StopGrace: cfg.StopGrace,
		OnEvent: func(e local.Event) {
			ctl.Record(controller.ReplicaEvent{Time: e.Time, App: e.App, Revision: e.Revision,
				Replica: e.Replica, Type: e.Type, Message: e.Message, Data: e.Data})
		},
		Drain: func(ctx context.Context, r local.Replica) { ctl.Drain(ctx, r.App, r.Addr) },
	})
	if err != nil {
		return err
	}
	tr := newTraffic(ctx)
	sweeper := newLogSweeper(st, logs, cfg.Log, func(app string) []string {
		var writing []string
		for _, r := range eng.Replicas(app) {
			writing = append(writing, r.LogPath)
		}
		return writing
	})
	ctl = controller.New(controller.Config{
		Store:       st,
		Engine:      &localEngine{Engine: eng, artifacts: arts, workRoot: filepath.Join(cfg.DataDir, "work")},
		Traffic:     tr,
		HasArtifact: arts.Has,
		RemoveArtifacts: func(ds []string) {
			for _, d := range ds {
				if p, err := arts.Path(d); err == nil {
					os.Remove(p)
				}
			}
		},
		// A pruned revision takes its logs and its /metrics series along.
		Pruned: func(app string, revs []int) {
			tr.forget(app, revs)
			sweeper.prune(app)
		},
		Samples: tr.samples,
		Log:     cfg.Log,
	})
	tel := telemetry.New(telemetry.Config{Store: st, Stats: tr.stats, Log: cfg.Log,
		Weights: func(app string) map[int]int {
			s, err := ctl.Status(ctx, app)
			if err != nil {
				return nil
			}
			w := map[int]int{}
			for _, r := range s.Traffic {
				w[r.Revision] = r.Weight
			}
			return w
		}})
	srv := &http.Server{
		Handler: (&api.Server{
			Controller: ctl, Store: st, Artifacts: arts, Stats: tr.stats,
			Token: cfg.Token, Version: cfg.Version, Ready: ctl.Recovered,
			Incidents: filepath.Join(cfg.DataDir, "incidents"), Metrics: tel.Handler(),
			Dashboard: dashboard.Handler(dashboard.Source{
				Apps: ctl.Apps, Events: dashboard.StoreEvents(st), Incidents: filepath.Join(cfg.DataDir, "incidents"),
			}, cfg.Token),
		}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}

	rec := incident.New(incident.Config{
		Store: st, Dir: filepath.Join(cfg.DataDir, "incidents"), Stats: tr.stats, Log: cfg.Log, Artifacts: arts,
		Logs: func(app string, rev int) []string {
			ps, _ := filepath.Glob(filepath.Join(logs, app, strconv.Itoa(rev), "*.log"))
			return ps
		},
		Processes: func(app string) []incident.Process {
			var out []incident.Process
			for _, r := range eng.Replicas(app) {
				out = append(out, incident.Process{Revision: r.Revision, PID: r.PID})
			}
			return out
		},
	})

	var wg sync.WaitGroup
	errs := make(chan error, 7)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("engine", func() error { return eng.Run(ctx) })
	run("controller", func() error { return ctl.Run(ctx, eng.Changed()) })
	run("api", func() error { return srv.Serve(ln) })
	run("incidents", func() error { return rec.Run(ctx) })
	run("telemetry", func() error { return tel.Run(ctx) })
	run("logs", func() error { return sweeper.Run(ctx) })
	run("notifications", func() error { return notify.New(notify.Config{Store: st, Log: cfg.Log}).Run(ctx) })
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr().String())
	}
	<-ctx.Done()
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	srv.Shutdown(shutdown)
	tr.wait()
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
