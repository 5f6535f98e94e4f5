package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lastgood/lastgood/internal/strategy"
)

// Read-only serving. When the store fails its integrity check at start,
// lastgood does not guess: for each app it can still read, it serves the
// stable revision that the apps table names, but only once it has proven
// that revision intact —
//
//   - its row reads and its manifest decodes;
//   - its digest, recomputed from the manifest and the artifact digests,
//     equals the stored digest (so neither was changed);
//   - every artifact's stored copy re-hashes to its digest.
//
// Such an app is served at its address with the manifest's replicas and
// all traffic on that revision; an app that fails any step is not served
// and says why. Nothing else happens: no rollout runs or resumes, no check
// is judged, nothing is recorded, and every change (apply, promote, abort,
// pause, resume, undo) is refused with ErrReadOnly. Recovery is a restore
// with lastgood stopped (docs/store.md).

// frozenApp is what read-only serving does with one app.
type frozenApp struct {
	revision int
	replicas int
	err      error // why the app is not served
}

func (f *frozenApp) describe() string {
	if f.err != nil {
		return fmt.Sprintf("not served: %v", f.err)
	}
	return fmt.Sprintf("serving revision %d read-only: its manifest, digest and artifacts verify", f.revision)
}

// recoverFrozen loads every app it can read and proves its stable
// revision. It fails only when ctx ends.
func (c *Controller) recoverFrozen(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		c.unreadable = fmt.Sprintf("the apps cannot be read: %v", err)
		c.cfg.Log.Error("read-only serving: no app can be served", "err", err)
		return ctx.Err()
	}
	for _, app := range apps {
		a := newAppState(app)
		c.apps[app.Name] = a
		a.frozen = c.prove(ctx, a)
		if a.frozen.err == nil {
			if err := c.holdFrozen(ctx, a); err != nil {
				a.frozen.err = fmt.Errorf("cannot listen on %s: %v", app.Listen, listenError(err))
			}
		}
		if a.frozen.err != nil {
			c.cfg.Log.Error("read-only serving: app not served", "app", app.Name, "err", a.frozen.err)
		} else {
			c.cfg.Log.Warn("read-only serving", "app", app.Name, "revision", a.frozen.revision)
		}
	}
	return nil
}

// holdFrozen binds a proven app's address the way a restart does
// (holdListener): its router accepts once the revision has a ready
// replica, or after its readiness grace (acceptHeld).
func (c *Controller) holdFrozen(ctx context.Context, a *appState) error {
	b, binds := c.cfg.Traffic.(Binder)
	spec, err := c.spec(ctx, a, a.frozen.revision)
	if !binds || err != nil {
		return c.cfg.Traffic.Listen(a.app.Name, a.app.Listen)
	}
	if err := b.Bind(a.app.Name, a.app.Listen); err != nil {
		return err
	}
	a.holdUntil, a.holdFor = c.cfg.Now().Add(spec.ReadinessGrace), spec.ReadinessGrace
	return nil
}

// prove checks a's stable revision as read-only serving requires.
func (c *Controller) prove(ctx context.Context, a *appState) *frozenApp {
	n := a.app.Stable
	if n == 0 {
		return &frozenApp{err: fmt.Errorf("%s has no stable revision", a.app.Name)}
	}
	r, err := c.revision(ctx, a, n)
	if err != nil {
		return &frozenApp{err: err}
	}
	if d := Digest(r.manifest, r.Artifacts); d != r.Digest {
		return &frozenApp{err: fmt.Errorf("revision %d: its manifest and artifact digests hash to %s, not to the stored %s", n, d, r.Digest)}
	}
	paths := make([]string, 0, len(r.Artifacts))
	for p := range r.Artifacts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if c.cfg.VerifyArtifact == nil {
			break
		}
		if err := c.cfg.VerifyArtifact(r.Artifacts[p]); err != nil {
			return &frozenApp{err: fmt.Errorf("revision %d: artifact %s: %v", n, p, err)}
		}
	}
	return &frozenApp{revision: n, replicas: r.manifest.Replicas}
}

// frozenState is the state read-only serving acts as: the proven
// revision, promoted.
func (f *frozenApp) state() strategy.State {
	return strategy.State{Phase: strategy.Promoted, From: f.revision, To: f.revision, ToReplicas: f.replicas}
}

func (f *frozenApp) plan() strategy.Plan {
	return strategy.Plan{Replicas: map[int]int{f.revision: f.replicas}, Weights: map[int]int{f.revision: 100}}
}

// serveFrozen keeps a proven revision running and routed. c.mu is held.
func (c *Controller) serveFrozen(ctx context.Context, a *appState) error {
	f := a.frozen
	if f.err != nil {
		return nil
	}
	return c.executePlan(ctx, a, f.state(), f.plan(), c.cfg.Engine.Replicas(a.app.Name))
}

func (c *Controller) frozenTable(ctx context.Context, a *appState, replicas []Replica) Table {
	return c.table(ctx, a, a.frozen.state(), a.frozen.plan(), replicas)
}

// writable refuses a change in read-only serving.
func (c *Controller) writable() error {
	if c.cfg.ReadOnly != "" {
		return fmt.Errorf("%w: %s; lastgood serves the revisions it can prove and changes nothing until the store is recovered (`lastgood restore`, with lastgood stopped)",
			ErrReadOnly, c.cfg.ReadOnly)
	}
	return nil
}

// ReadOnlyReport says, in read-only serving, what is served and what is
// not, one app a line; "" when the store is writable.
func (c *Controller) ReadOnlyReport() string {
	if c.cfg.ReadOnly == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := []string{"read-only: " + c.cfg.ReadOnly}
	if c.unreadable != "" {
		lines = append(lines, c.unreadable)
	}
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if f := c.apps[n].frozen; f != nil {
			lines = append(lines, n+": "+f.describe())
		}
	}
	return strings.Join(lines, "\n")
}
