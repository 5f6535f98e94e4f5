// Package local is lastgood's default engine: it runs each replica of a
// revision as a child process on this machine, in its own process group, on
// a free 127.0.0.1 port passed as PORT. It probes replicas for readiness and
// liveness, restarts crashed ones with exponential backoff, writes their
// output to size-bounded log files, and makes sure no child outlives
// lastgood: Pdeathsig while lastgood runs, a sweep of recorded process
// groups when it starts again after being killed.
//
// See docs/local-engine.md for the numbers and the reasons.
package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Errors callers branch on.
var (
	// ErrCommandNotFound: the program of a spec does not exist.
	ErrCommandNotFound = errors.New("command not found")
	// ErrNotExecutable: the program exists but cannot be executed.
	ErrNotExecutable = errors.New("command not executable")
	// ErrInvalidSpec: a spec or a scale request is malformed.
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrNoReplicas: Adopt found no running replica to relabel.
	ErrNoReplicas = errors.New("no running replicas")
	// ErrRevisionInUse: Adopt's target revision already has replicas.
	ErrRevisionInUse = errors.New("revision already has replicas")
	// ErrStopped: the engine's Run has returned.
	ErrStopped = errors.New("engine stopped")
	// ErrDataDirInUse: another engine holds the data directory.
	ErrDataDirInUse = errors.New("data directory in use by another engine")
)

// Config configures an Engine.
type Config struct {
	// DataDir holds logs at DataDir/logs/<app>/<rev>/<replica>.log and
	// process records at DataDir/run/.
	DataDir string
	// LogLimit is the size of a replica log before it is rotated to .1
	// (default 10 MiB). At most the file and one backup exist.
	LogLimit int64
	// StopGrace is the time between SIGTERM and SIGKILL (default 10s).
	StopGrace time.Duration
	// OnEvent receives replica lifecycle events. It is called from engine
	// goroutines, possibly concurrently, without engine locks held, and must
	// not block.
	OnEvent func(Event)
	// Drain is called before a replica is stopped on purpose (scale down),
	// after its State became StateStopping, and before SIGTERM. It may be
	// nil. Its context ends when the engine stops. It is not called for
	// replicas stopped because Run's context ended.
	Drain func(ctx context.Context, r Replica)
}

// Engine runs replicas as child processes. Create it with New, start it with
// Run; Scale, Replicas, Adopt and Changed may be called from any goroutine.
type Engine struct {
	cfg     Config
	runDir  string
	lock    *os.File
	spawner *spawner
	probes  *http.Client
	changed chan struct{}

	mu       sync.Mutex
	desired  map[revKey]*desiredRevision
	replicas []*replica
	runCtx   context.Context // set while Run runs
	started  bool            // Run was called
	closed   bool            // Run is stopping or has returned
	wg       sync.WaitGroup  // one per replica supervisor
}

type revKey struct {
	app string
	rev int
}

type desiredRevision struct {
	spec Spec
	n    int
}

// New checks cfg, takes the data directory, and sweeps process groups left
// behind by an earlier lastgood that was killed.
func New(cfg Config) (*Engine, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("local engine: %w: DataDir is empty", ErrInvalidSpec)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local engine: data dir: %w", err)
	}
	cfg.DataDir = dataDir
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = defaultLogLimit
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	runDir := filepath.Join(dataDir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("local engine: %w", err)
	}
	lock, err := lockRunDir(runDir)
	if err != nil {
		return nil, fmt.Errorf("local engine: %w", err)
	}
	if _, err := sweep(runDir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("local engine: sweep: %w", err)
	}
	return &Engine{
		cfg:     cfg,
		runDir:  runDir,
		lock:    lock,
		spawner: newSpawner(),
		probes:  newProbeClient(),
		changed: make(chan struct{}, 1),
		desired: make(map[revKey]*desiredRevision),
	}, nil
}

// Run supervises replicas until ctx ends, then stops every replica (SIGTERM,
// StopGrace, SIGKILL to the whole process group), waits until all are
// reaped, releases the data directory and returns nil. Scale calls made
// before Run take effect when it starts.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("local engine: Run called twice")
	}
	e.started, e.runCtx = true, ctx

	spawnCtx, stopSpawner := context.WithCancel(context.WithoutCancel(ctx))
	spawnerDone := make(chan struct{})
	go func() {
		defer close(spawnerDone)
		e.spawner.run(spawnCtx)
	}()
	e.reconcileLocked()
	e.mu.Unlock()

	<-ctx.Done()
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wg.Wait() // supervisors see ctx end and stop their processes
	stopSpawner()
	<-spawnerDone
	e.probes.CloseIdleConnections()
	if err := e.lock.Close(); err != nil {
		return fmt.Errorf("local engine: release run lock: %w", err)
	}
	return nil
}

// Changed returns a channel that receives a value (coalesced, never
// blocking the engine) whenever a replica's State changes or a replica
// appears, disappears or is relabelled.
func (e *Engine) Changed() <-chan struct{} { return e.changed }

func (e *Engine) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// Scale makes n replicas of (spec.App, spec.Revision) exist, starting or
// stopping replicas in the background; it does not wait for them. When
// stopping, not-ready replicas go first, then those with the highest index.
// It returns an error only when the spec cannot run: ErrCommandNotFound or
// ErrNotExecutable naming the path, or ErrInvalidSpec.
func (e *Engine) Scale(ctx context.Context, spec Spec, n int) error {
	if err := e.validate(spec, n); err != nil {
		return fmt.Errorf("scale %s revision %d: %w", spec.App, spec.Revision, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scale %s revision %d: %w", spec.App, spec.Revision, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("scale %s revision %d: %w", spec.App, spec.Revision, ErrStopped)
	}
	key := revKey{spec.App, spec.Revision}
	e.desired[key] = &desiredRevision{spec: cloneSpec(spec), n: n}
	if e.started {
		e.reconcileLocked()
	}
	return nil
}

// validate checks a spec; the program is checked only when n > 0, so a
// revision whose binary is gone can still be scaled to zero.
func (e *Engine) validate(spec Spec, n int) error {
	switch {
	case spec.App == "" || filepath.Base(spec.App) != spec.App || spec.App == "." || spec.App == "..":
		return fmt.Errorf("%w: app name %q", ErrInvalidSpec, spec.App)
	case spec.Revision < 1:
		return fmt.Errorf("%w: revision %d, want 1 or more", ErrInvalidSpec, spec.Revision)
	case n < 0:
		return fmt.Errorf("%w: %d replicas", ErrInvalidSpec, n)
	case n == 0:
		return nil
	case len(spec.Command) == 0:
		return fmt.Errorf("%w: empty command", ErrInvalidSpec)
	}
	env := replicaEnv(spec, 0)
	argv := expandArgs(spec.Command, env)
	_, err := resolveProgram(argv[0], e.workDir(spec), pathOf(env))
	return err
}

func (e *Engine) workDir(spec Spec) string {
	if spec.Dir == "" {
		return e.cfg.DataDir
	}
	if filepath.IsAbs(spec.Dir) {
		return spec.Dir
	}
	if abs, err := filepath.Abs(spec.Dir); err == nil {
		return abs
	}
	return spec.Dir
}

// Replicas returns a snapshot of app's replicas sorted by revision, then
// index.
func (e *Engine) Replicas(app string) []Replica {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Replica
	for _, r := range e.replicas {
		if r.app == app {
			out = append(out, r.snapshotLocked())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Revision != out[j].Revision {
			return out[i].Revision < out[j].Revision
		}
		return out[i].Index < out[j].Index
	})
	return out
}

// Adopt relabels the running replicas of revision from as revision to, for
// an undo whose new revision has the same content as from. The processes
// keep their environment (LASTGOOD_REVISION=from), their log paths, and the
// spec they restart with; the desired count of from moves to to. It fails
// with ErrNoReplicas when from has none that is not stopping, and with
// ErrRevisionInUse when to already has replicas or a desired count.
func (e *Engine) Adopt(app string, from, to int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("adopt %s revision %d as %d: %w", app, from, to, ErrStopped)
	}
	if d := e.desired[revKey{app, to}]; d != nil && d.n > 0 {
		return fmt.Errorf("adopt %s revision %d as %d: %w", app, from, to, ErrRevisionInUse)
	}
	var moving []*replica
	for _, r := range e.replicas {
		switch {
		case r.app != app:
		case r.rev == to:
			return fmt.Errorf("adopt %s revision %d as %d: %w", app, from, to, ErrRevisionInUse)
		case r.rev == from && !r.stopRequested:
			moving = append(moving, r)
		}
	}
	if len(moving) == 0 {
		return fmt.Errorf("adopt %s revision %d as %d: %w", app, from, to, ErrNoReplicas)
	}
	for _, r := range moving {
		r.rev = to
	}
	if d := e.desired[revKey{app, from}]; d != nil {
		delete(e.desired, revKey{app, from})
		d.spec.Revision = to
		e.desired[revKey{app, to}] = d
	}
	e.notify()
	return nil
}

func (e *Engine) emit(ev Event) {
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ev)
	}
}

func cloneSpec(s Spec) Spec {
	s.Command = append([]string(nil), s.Command...)
	env := make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		env[k] = v
	}
	s.Env = env
	return s
}
