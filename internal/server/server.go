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
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/dashboard"
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
	// Token (LASTGOOD_TOKEN), when set, is an admin token, audited as
	// LASTGOOD_TOKEN.
	Token string
	// Tokens are the tokens with roles of --tokens-file. With neither
	// Token nor Tokens the API is open (see InsecureNoAuth).
	Tokens *access.Tokens
	// AllowedHosts are the Host names requests may carry besides
	// localhost and IP addresses (--allowed-host).
	AllowedHosts []string
	// TLSCert and TLSKey (PEM files, both or neither) serve the API and
	// the dashboard over HTTPS.
	TLSCert, TLSKey string
	// MetricsAuth says whether /metrics needs a viewer token: "token",
	// "open", or "auto" (the default): a token when the API has tokens
	// and other machines can reach it, open otherwise.
	MetricsAuth string
	// InsecureNoAuth lets the API serve without a token on an address
	// other machines can reach; Run refuses that otherwise.
	InsecureNoAuth bool
	Version        string
	Log            *slog.Logger
	// StopGrace is the time a replica gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// Engine is where revisions run: "local" (the default) or
	// "kubernetes".
	Engine string
	// Kubeconfig is the kubeconfig file of the kubernetes engine; empty
	// means $KUBECONFIG, then the in-cluster config when run in a pod,
	// then ~/.kube/config.
	Kubeconfig string
	// Namespace is where the kubernetes engine runs apps whose manifest
	// names none; empty means the kubeconfig's (or the pod's) namespace.
	Namespace string
	// Listening, when set, is called with the API's address once it
	// accepts connections.
	Listening func(addr string)
}

// Run serves until ctx ends, then stops everything it started: the API,
// the routers, the controller and every replica. A configuration Check
// refuses is an error that errors.Is ErrConfig, returned before anything
// changes.
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
	sec, err := cfg.security()
	if err != nil {
		return err
	}
	var kube *kubernetesSetup
	if cfg.Engine == "kubernetes" {
		// Before anything is created: a kubeconfig that cannot be used
		// leaves no data directory behind.
		if kube, err = loadKubernetes(cfg); err != nil {
			return err
		}
	}
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
	key, err := sessionKey(cfg.DataDir)
	if err != nil {
		return err
	}
	gate, err := access.New(access.Config{Tokens: sec.tokens, AllowedHosts: cfg.AllowedHosts, RawPrefix: api.RawPrefix, Key: key})
	if err != nil {
		return configError{err}
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer ln.Close()
	sec.warn(cfg)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ctl *controller.Controller
	var be *backend
	if cfg.Engine == "kubernetes" {
		be, err = kubernetesBackend(cfg, kube)
	} else {
		be, err = localBackend(ctx, cfg, func() *controller.Controller { return ctl }, arts, st)
	}
	if err != nil {
		return err
	}
	ctl = controller.New(controller.Config{
		Store:       st,
		Engine:      be.engine,
		Traffic:     be.traffic,
		HasArtifact: arts.Has,
		RemoveArtifacts: func(ds []string) {
			for _, d := range ds {
				if p, err := arts.Path(d); err == nil {
					os.Remove(p)
				}
			}
		},
		// A pruned revision takes its logs and its /metrics series along.
		Pruned:  be.pruned,
		Samples: be.samples,
		Log:     cfg.Log,
	})
	tel := telemetry.New(telemetry.Config{Store: st, Stats: be.stats, Log: cfg.Log,
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
	act := func(ctx context.Context, app, verb, by string) error {
		_, err := api.Act(ctx, ctl, app, verb, api.ActionRequest{}, by)
		return err
	}
	srv := &http.Server{
		Handler: (&api.Server{
			Controller: ctl, Store: st, Artifacts: arts, Stats: be.stats,
			Gate: gate, Page: dashboard.Deny, Version: cfg.Version, Ready: ctl.Recovered,
			Incidents: filepath.Join(cfg.DataDir, "incidents"), Metrics: tel.Handler(), MetricsRole: sec.metrics,
			Dashboard: dashboard.Handler(dashboard.Source{
				Apps: ctl.Apps, Events: dashboard.StoreEvents(st), Incidents: filepath.Join(cfg.DataDir, "incidents"), Act: act,
			}, gate),
		}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         sec.tls,
		// Failed TLS handshakes and the like: worth a debug line, no more.
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}

	rec := incident.New(incident.Config{
		Store: st, Dir: filepath.Join(cfg.DataDir, "incidents"), Stats: be.stats, Log: cfg.Log, Artifacts: arts,
		Logs: be.logs, Processes: be.processes,
	})

	var wg sync.WaitGroup
	errs := make(chan error, 8)
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
	run("engine", func() error { return be.run(ctx) })
	run("controller", func() error { return ctl.Run(ctx, be.changed) })
	if be.announce != nil {
		last, err := st.LastSeq(ctx)
		if err != nil {
			return err
		}
		run("engine events", func() error { return st.Follow(ctx, last, be.announce) })
	}
	run("api", func() error {
		if sec.tls != nil {
			return srv.ServeTLS(ln, "", "")
		}
		return srv.Serve(ln)
	})
	run("incidents", func() error { return rec.Run(ctx) })
	run("telemetry", func() error { return tel.Run(ctx) })
	if be.sweep != nil {
		run("logs", func() error { return be.sweep(ctx) })
	}
	run("notifications", func() error { return notify.New(notify.Config{Store: st, Log: cfg.Log}).Run(ctx) })
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr().String())
	}
	<-ctx.Done()
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	srv.Shutdown(shutdown)
	be.wait()
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
