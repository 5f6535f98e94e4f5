// Package controller is the thin loop around the pure strategy core: it
// feeds observations of the engine into internal/strategy, persists every
// transition in the store before acting on it, and carries out the plan
// through two small interfaces it owns, Engine and Traffic.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/otlp"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// Errors the API turns into exit codes.
var (
	// ErrInvalid marks a request that was refused with nothing changed.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict marks a request that cannot be taken in the app's
	// current state (a rollout in progress, nothing to undo).
	ErrConflict = errors.New("conflict")
	// ErrNotFound marks an app, revision or rollout that does not exist.
	ErrNotFound = store.ErrNotFound
	// ErrReadOnly marks a change refused because the store is damaged:
	// lastgood serves what it can prove and changes nothing.
	ErrReadOnly = store.ErrReadOnly
)

// Workload is one revision for an engine to run.
type Workload struct {
	App      string
	Revision int
	Manifest *manifest.App
	// Artifacts maps each artifact path as written in the manifest to its
	// digest in the artifact store.
	Artifacts map[string]string
}

// Replica is what an engine reports of one running replica.
type Replica struct {
	ID       string `json:"id"`
	Revision int    `json:"revision"`
	Addr     string `json:"addr"`
	State    string `json:"state"`
	Ready    bool   `json:"ready"`
	Stopping bool   `json:"stopping"`
	Restarts int    `json:"restarts"`
	PID      int    `json:"pid,omitempty"`
	LastExit string `json:"lastExit,omitempty"`
	// Unrunnable, when set, says why the replica can never start, however
	// long one waits (an image that cannot be pulled): the rollout is
	// rolled back at once.
	Unrunnable string    `json:"unrunnable,omitempty"`
	Started    time.Time `json:"started"`
	// Log is the path of the replica's log file, empty when the engine
	// keeps none.
	Log string `json:"log,omitempty"`
}

// Engine runs revisions. Scale returns at once and converges in the
// background; Replicas reports what runs; Adopt relabels the replicas of
// one revision as another with identical content (undo's fast path).
type Engine interface {
	Scale(ctx context.Context, w Workload, n int) error
	Replicas(app string) []Replica
	Adopt(app string, from, to int) error
}

// Checker is implemented by engines that can tell at apply time that a
// workload cannot run (a command that is not there, say).
type Checker interface {
	Check(w Workload) error
}

// Scoper is implemented by engines that place revisions where metrics
// are labelled by place and replica name (a namespace, pod names):
// Prometheus query templates refer to them as {{.Namespace}} and
// {{.Pod}}.
type Scoper interface {
	Scope(app string, revision int) Scope
}

// Scope places one revision of an app.
type Scope struct {
	Namespace string
	// Pod is a regular expression (RE2, whole-name, as PromQL's =~
	// matches) of the names of the revision's replicas.
	Pod string
}

// Resolver is implemented by engines that pin what a manifest names
// outside lastgood to its content at apply time (an image tag to its
// digest). The pins join the revision's artifacts, so a tag that moved
// makes a new revision and an undo runs the old content. Errors are
// manifest field errors: the apply is refused with nothing changed.
type Resolver interface {
	Resolve(ctx context.Context, m *manifest.App) (map[string]string, error)
}

// Origin is implemented by engines whose first revision of an app can
// come from outside lastgood (a workload it took over). NothingBefore says
// why an undo from revision rev, which has nothing earlier to return to,
// cannot go further; "" when the engine has nothing to add.
type Origin interface {
	NothingBefore(app string, rev int, m *manifest.App) string
}

// Route is one revision's share of an app's traffic.
type Route struct {
	Revision int      `json:"revision"`
	Weight   int      `json:"weight"`
	Backends []string `json:"backends"`
	// Holdback marks the warm previous revision's share inside the
	// rollback window (rollback.holdback): it takes requests by weight
	// alone, whatever their affinity cookie, and pins no client to it.
	Holdback bool `json:"holdback,omitempty"`
}

// Table is all of one traffic key's routing.
type Table struct {
	Routes   []Route
	Affinity *manifest.SessionAffinity
	// Match sends requests with a header or cookie to one revision before
	// the weights apply (a canary's strategy.canary.match).
	Match []Match
	// Router is the router section of the manifest in force (nil: the
	// router's defaults).
	Router *manifest.Router
}

// Match is one header or cookie rule; exactly one of Header and Cookie is
// set.
type Match struct {
	Header, Cookie, Value string
	Revision              int
}

func (t Table) equal(u Table) bool {
	return slices.EqualFunc(t.Routes, u.Routes, routeEqual) && t.Affinity == u.Affinity && slices.Equal(t.Match, u.Match) && t.Router == u.Router
}

// Traffic sets where an app's requests go. A key is an app name, or an
// app's preview (PreviewKey).
type Traffic interface {
	// Listen starts serving key on addr; it is a no-op when key already
	// serves addr. On an address that Bind took for key (see Binder), it
	// starts accepting the connections waiting there.
	Listen(key, addr string) error
	Close(key string)
	Route(key string, t Table)
	// WaitIdle returns once no request to backend addr is in flight.
	WaitIdle(ctx context.Context, key, addr string) error
}

func newAppState(app store.App) *appState {
	return &appState{app: app, revisions: map[int]*revision{}, routes: map[string]Table{}, scaled: map[int]int{}}
}

// PreviewKey is the Traffic key of an app's blue-green preview listener.
func PreviewKey(app string) string { return app + "/preview" }

// Config is what a Controller needs.
type Config struct {
	Store   *store.Store
	Engine  Engine
	Traffic Traffic
	// HasArtifact reports whether the artifact store holds a digest.
	HasArtifact func(digest string) bool
	// RemoveArtifacts deletes digests no kept revision refers to.
	RemoveArtifacts func(digests []string)
	// Pruned, when set, is told the revisions `history` pruned, once they
	// are deleted from the store (their logs and metrics go with them).
	Pruned func(app string, revisions []int)
	// Samples returns an app's cumulative router counts per revision, the
	// signal of compare and threshold checks.
	Samples func(app string) map[int]judge.Sample
	// Traces returns what the OTLP receiver aggregated of an app's
	// revision's spans, the signal of the agent metrics; nil without one.
	Traces func(app string, revision int) (otlp.Aggregate, bool)
	Now    func() time.Time // default time.Now
	Log    *slog.Logger
	// Interval between reconciliations when nothing wakes the loop.
	Interval time.Duration
	// DrainTimeout bounds how long a stopping replica waits for its
	// in-flight requests (default 30s).
	DrainTimeout time.Duration
	// Database lints and runs the migrations of apps with a database
	// section; nil refuses them.
	Database Database
	// ReadOnly, when set, says why the store cannot be trusted (it failed
	// its integrity check): the controller then serves each app's stable
	// revision that it can prove intact, runs no rollout, records nothing
	// and refuses every change (frozen.go).
	ReadOnly string
	// VerifyArtifact re-hashes a stored artifact; read-only serving
	// requires it of every artifact of the revisions it serves.
	VerifyArtifact func(digest string) error
}

// Controller drives every app toward what its latest rollout asks for.
type Controller struct {
	cfg Config

	mu   sync.Mutex
	apps map[string]*appState
	// closing are apps being deleted whose routers are still closing.
	closing map[string]bool
	wake    chan struct{}
	pending eventQueue
	// recovered is closed once Run has restored every app from the store;
	// watching is when that began.
	recovered chan struct{}
	watching  time.Time
	// runCtx is Run's context, which the analysis runners live under; runs
	// owns their goroutines.
	runCtx context.Context
	runs   sync.WaitGroup
	// logs keeps failures that repeat at every tick from flooding the log.
	logs limitedLog
	// unreadable says why the apps could not be read at all, in read-only
	// serving.
	unreadable string
}

// appState is the controller's cache of one app; the store is the truth.
type appState struct {
	app       store.App
	rollout   store.Rollout  // latest rollout, final or not
	state     strategy.State // its decoded state
	revisions map[int]*revision
	routes    map[string]Table // last table set per traffic key
	scaled    map[int]int      // last replica count asked of the engine per revision
	// warm is the previous stable revision of the last promotion, kept
	// running until warmUntil even after a later rollout started. Only one
	// is kept: frequent releases must not pile up warm processes.
	warm      int
	warmUntil time.Time
	preview   string // preview address being served
	// previewFailed is a preview address that could not be listened on,
	// recorded once.
	previewFailed string
	run           *analysisRun // the latest rollout's checks, when they run
	health        healthBase   // the router's counts when the latest rollout started
	// analysisFailed is the rollout whose checks could not be started,
	// recorded once.
	analysisFailed int64
	// db is the lint of the revision Apply is about to roll out, whose
	// migrations run before its traffic moves; migrating is the rollout
	// whose migrations run now (nothing of it is reconciled meanwhile);
	// applied is what the latest rollout migrated, for the rollback
	// policy (database.go).
	db        *dbPlan
	migrating int64
	applied   *appliedMigrations
	// windowRestarted is the promoted rollout whose rollback window was
	// open when lastgood started: its statistical checks are not re-armed
	// (strategy.Recover).
	windowRestarted int64
	// holdUntil is when a listener bound at a restart starts accepting even
	// without a ready replica (holdFor after the restart); zero once it
	// accepts.
	holdUntil time.Time
	holdFor   time.Duration
	// unrecorded is a rollback applied to traffic that the store has not
	// recorded yet (unrecorded.go).
	unrecorded *unrecorded
	// frozen is set in read-only serving: what of the app is served.
	frozen *frozenApp
}

type revision struct {
	store.Revision
	manifest *manifest.App
}

// New returns a controller; Run starts it.
func New(cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.HasArtifact == nil {
		cfg.HasArtifact = func(string) bool { return true }
	}
	return &Controller{cfg: cfg, apps: map[string]*appState{}, closing: map[string]bool{}, wake: make(chan struct{}, 1), recovered: make(chan struct{})}
}

// Wake asks the loop to reconcile now.
func (c *Controller) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Recovered reports whether Run has restored every app from the store.
func (c *Controller) Recovered() bool {
	select {
	case <-c.recovered:
		return true
	default:
		return false
	}
}

// Run recovers every app from the store, then reconciles until ctx ends.
// changed, when not nil, wakes the loop (an engine's replica changes).
func (c *Controller) Run(ctx context.Context, changed <-chan struct{}) error {
	defer c.runs.Wait()
	c.mu.Lock()
	c.runCtx = ctx
	c.mu.Unlock()
	recover := c.recover
	if c.cfg.ReadOnly != "" {
		recover = c.recoverFrozen
	}
	if err := recover(ctx); err != nil {
		return fmt.Errorf("recover state: %w", err)
	}
	close(c.recovered)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		c.reconcileAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.wake:
		case <-changed:
		}
	}
}

func (c *Controller) reconcileAll(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushEvents(ctx)
	for name := range c.apps {
		err := c.reconcile(ctx, name)
		switch {
		case err == nil:
			c.logs.ok(c.cfg.Log, "reconcile/"+name, "reconcile works again", "app", name)
		case ctx.Err() == nil:
			c.logs.error(c.cfg.Log, "reconcile/"+name, "reconcile", "app", name, "err", err)
		}
		if a := c.apps[name]; a != nil {
			c.acceptHeld(ctx, a, c.cfg.Now())
		}
	}
}
