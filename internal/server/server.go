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
	"github.com/lastgood/lastgood/internal/database"
	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/notify"
	"github.com/lastgood/lastgood/internal/ofrep"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/signal/otlp"
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
	// Reserve is how many bytes of disk the store keeps preallocated in
	// the data directory, given up when the disk is full so that a
	// rollback can still be recorded: 0 means DefaultReserve, a negative
	// value none.
	Reserve int64
	// OTLP is the listen address of the OTLP/HTTP trace receiver
	// (--otlp); empty or "off" runs none. OTLPFallback, set when OTLP is
	// the default rather than asked for, listens on an ephemeral loopback
	// port when that address is taken.
	OTLP         string
	OTLPFallback bool
	// OFREP is the listen address of the OFREP flag evaluation server
	// (--ofrep); empty is ofrep.DefaultAddr (an ephemeral loopback port
	// when that is taken), "off" runs none. OFREPTokens are its
	// evaluation tokens (none: open, loopback only); OFREPRate its
	// requests a second per token (0: DefaultOFREPRate, negative: no
	// limit). OFREPListening, when set, is called with its URL.
	OFREP          string
	OFREPFallback  bool
	OFREPTokens    *ofrep.Tokens
	OFREPRate      float64
	OFREPListening func(url string)
}

// DefaultReserve is the store's reserve unless Config says otherwise:
// about a thousand rollbacks' worth of writes once the disk is full
// (bench/reserve).
const DefaultReserve = 8 << 20

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
	// Replicas run in their own work folders: every path lastgood hands
	// them must be absolute.
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cfg.DataDir = dir
	reserve := cfg.Reserve
	switch {
	case reserve == 0:
		reserve = DefaultReserve
	case reserve < 0:
		reserve = 0
	}
	// The start-up checks: the store refuses a state.db that is not this
	// directory's or that is behind its anchor or an incident bundle's
	// head, and opens a damaged one read-only.
	st, err := store.OpenDir(cfg.DataDir, store.DirOptions{Reserve: reserve,
		Witnesses: incident.Witnesses(filepath.Join(cfg.DataDir, "incidents"))})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := privateState(filepath.Join(cfg.DataDir, "state.db")); err != nil {
		return err
	}
	readOnly := st.Health().ReadOnly
	if readOnly != "" {
		cfg.Log.Error("the store is damaged: serving read-only what can be proven", "data", cfg.DataDir, "why", readOnly)
	} else {
		// Not on a damaged store: what it cannot read is not gone.
		pruneAllLogs(ctx, st, filepath.Join(cfg.DataDir, "logs"), cfg.Log)
	}
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
	tr, err := listenOTLP(cfg.OTLP, cfg.OTLPFallback, cfg.Log)
	if err != nil {
		return err
	}
	if tr != nil {
		defer tr.ln.Close()
	}
	fl, err := listenOFREP(cfg, sec.tokens, st)
	if err != nil {
		return err
	}
	if fl != nil {
		defer fl.ln.Close()
	}
	var ctl *controller.Controller
	var be *backend
	if cfg.Engine == "kubernetes" {
		be, err = kubernetesBackend(cfg, kube, arts)
	} else {
		be, err = localBackend(ctx, cfg, func() *controller.Controller { return ctl }, arts, st)
	}
	if err != nil {
		return err
	}
	if tr != nil {
		tr.recv = otlp.New(otlp.Config{Known: running(be.engine)})
		if le, ok := be.engine.(*localEngine); ok {
			le.otlp = tr.url
		}
		pruned := be.pruned
		be.pruned = func(app string, revs []int) {
			tr.recv.Forget(app, revs)
			if pruned != nil {
				pruned(app, revs)
			}
		}
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
		Pruned:         be.pruned,
		Samples:        be.samples,
		Traces:         tr.aggregate,
		Log:            cfg.Log,
		ReadOnly:       readOnly,
		VerifyArtifact: arts.Verify,
		Database: database.New(database.Config{Read: func(digest string) ([]byte, error) {
			p, err := arts.Path(digest)
			if err != nil {
				return nil, err
			}
			return os.ReadFile(p)
		}}),
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
	apiServer := &api.Server{
		Controller: ctl, Store: st, Artifacts: arts, Stats: be.stats,
		Gate: gate, Page: dashboard.Deny, Version: cfg.Version, Ready: ctl.Recovered,
		Incidents: filepath.Join(cfg.DataDir, "incidents"), Metrics: tel.Handler(), MetricsRole: sec.metrics,
		Degraded: func() string { return degraded(cfg.DataDir, st, ctl) }, BackupDir: cfg.DataDir,
		Dashboard: dashboard.Handler(dashboard.Source{
			Apps: ctl.Apps, Events: dashboard.StoreEvents(st), Incidents: filepath.Join(cfg.DataDir, "incidents"), Act: act,
		}, gate),
	}
	var gitops *kubernetes.GitOps
	if be.gitops != nil {
		gitops = be.gitops(ctl)
		apiServer.Applied, apiServer.Deleted = gitops.Applied, gitops.Deleted
		announce := be.announce
		be.announce = func(ev store.Event) {
			announce(ev)
			gitops.Changed(ev.App)
		}
	}
	srv := &http.Server{
		Handler:           apiServer.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         sec.tls,
		// Failed TLS handshakes and the like: worth a debug line, no more.
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}

	rec := incident.New(incident.Config{
		Store: st, Dir: filepath.Join(cfg.DataDir, "incidents"), Stats: be.stats, Log: cfg.Log, Artifacts: arts,
		Logs: be.logs, Processes: be.processes, Traces: tr.samples, Evidence: be.evidence,
	})

	var wg sync.WaitGroup
	errs := make(chan error, 16)
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
	// Before anything runs: an engine that fails at once cancels ctx.
	last, err := st.LastSeq(ctx)
	if err != nil {
		return err
	}
	run("engine", func() error { return be.run(ctx) })
	if tr != nil {
		run("otlp", func() error { return tr.serve(ctx, cfg.Log) })
	}
	if fl != nil {
		run("ofrep", func() error { return fl.serve(ctx, cfg.Log, cfg.OFREPListening) })
	}
	run("controller", func() error { return ctl.Run(ctx, be.changed) })
	if gitops != nil {
		run("gitops", func() error { return gitops.Run(ctx) })
	}
	if be.announce != nil {
		run("engine events", func() error { return st.Follow(ctx, last, be.announce) })
	}
	run("api", func() error {
		if sec.tls != nil {
			return srv.ServeTLS(ln, "", "")
		}
		return srv.Serve(ln)
	})
	run("store", func() error { return st.Maintain(ctx) })
	if readOnly == "" {
		// The followers of the event log read what the controller wrote;
		// one that cannot read it (a page damaged while serving) is
		// started again rather than stopping lastgood and its traffic.
		run("incidents", func() error { return again(ctx, cfg.Log, "incidents", rec.Run) })
		run("telemetry", func() error { return again(ctx, cfg.Log, "telemetry", tel.Run) })
		if be.sweep != nil {
			run("logs", func() error { return be.sweep(ctx) })
		}
		run("notifications", func() error {
			return again(ctx, cfg.Log, "notifications", func(ctx context.Context) error {
				return notify.New(notify.Config{Store: st, Log: cfg.Log}).Run(ctx)
			})
		})
		if be.proxyErrors != nil {
			run("proxy errors", func() error { return be.proxyErrors(ctx, ctl.Record) })
		}
	}
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

// degraded says why lastgood is not fully working, "" when it is: a store
// served read-only, or one that cannot write.
func degraded(dir string, st *store.Store, ctl *controller.Controller) string {
	if r := ctl.ReadOnlyReport(); r != "" {
		return r + fmt.Sprintf("\nto recover, with lastgood stopped: `lastgood audit verify --data %s`, then `lastgood restore --data %s BACKUP.db` (or --fresh)", dir, dir)
	}
	h := st.Health()
	if h.WriteError == "" {
		return ""
	}
	since := ""
	if h.FailingSince != nil {
		since = " since " + h.FailingSince.Format(time.RFC3339)
	}
	return fmt.Sprintf("the store cannot write%s (%d failed writes): %s; reserve: %s", since, h.FailedWrites, h.WriteError, h.Reserve)
}

// againAfter is how long a follower of the event log that failed waits
// before it starts again.
const againAfter = 5 * time.Second

// again runs f until ctx ends, starting it again after a pause whenever
// it fails; failures are logged, at most one a pause.
func again(ctx context.Context, log *slog.Logger, name string, f func(context.Context) error) error {
	for {
		err := f(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Error("stopped; starting again", "part", name, "in", againAfter.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(againAfter):
		}
	}
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
