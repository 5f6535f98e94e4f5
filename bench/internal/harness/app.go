package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// App is one app a benchmark delivers: a directory holding a copy of the
// sample app (as bin/web) and the manifest, and the address lastgood's
// router serves it on.
type App struct {
	Name, Dir, Listen string
}

// NewApp makes the app's directory under root with a copy of the sample
// app, and picks a free listen address.
func NewApp(root, name, sampleApp string) (*App, error) {
	a := &App{Name: name, Dir: filepath.Join(root, name)}
	if err := os.MkdirAll(filepath.Join(a.Dir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	b, err := os.ReadFile(sampleApp)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(a.Dir, "bin", "web"), b, 0o755); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	if a.Listen, err = freeAddr(); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	return a, nil
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Manifest returns a manifest of the app: the sample app, 2 replicas,
// env (a YAML flow map such as `{SWITCH: "3"}`) in its environment,
// readiness on /healthz every 100ms, and then tail (strategy, analysis,
// rollback, as YAML at the top level).
func (a *App) Manifest(env, tail string) string {
	return fmt.Sprintf(`name: %s
listen: %s
replicas: 2
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: %s
probes:
  readiness: {http: /healthz, period: 100ms}
`, a.Name, a.Listen, env) + tail
}

// Apply writes manifest as the app's app.yaml, applies it and returns the
// rollout it started; what names the revision in errors ("SWITCH=3").
func (a *App) Apply(ctx context.Context, c *api.Client, manifest, what string) (controller.ApplyResult, error) {
	p := filepath.Join(a.Dir, "app.yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		return controller.ApplyResult{}, fmt.Errorf("write manifest: %w", err)
	}
	res, err := c.ApplyFile(ctx, p)
	if err != nil {
		return res, fmt.Errorf("apply %s %s: %w", a.Name, what, err)
	}
	if res.Rollout == 0 {
		return res, fmt.Errorf("apply %s %s started no rollout: %s", a.Name, what, res.Message)
	}
	return res, nil
}

// ErrRolloutEnded is returned when a rollout ends otherwise than a caller
// waited for.
var ErrRolloutEnded = errors.New("rollout ended")

// WaitFor polls the app's status every 10ms until ok says so, for at most
// limit; what names the awaited state in the timeout error.
func WaitFor(ctx context.Context, c *api.Client, app string, limit time.Duration, what string,
	ok func(controller.AppStatus) (bool, error)) (controller.AppStatus, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := c.App(ctx, app)
		if err != nil {
			return st, fmt.Errorf("status of %s: %w", app, err)
		}
		done, err := ok(st)
		if err != nil || done {
			return st, err
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s: %s not reached within %s", app, what, limit)
		}
		if err := Sleep(ctx, 10*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// WaitEnded waits, for at most limit, until rollout id has ended, and
// returns it as it ended.
func WaitEnded(ctx context.Context, c *api.Client, app string, id int64, limit time.Duration) (controller.RolloutStatus, error) {
	st, err := WaitFor(ctx, c, app, limit, fmt.Sprintf("end of rollout #%d", id),
		func(st controller.AppStatus) (bool, error) {
			r := st.Rollout
			return r != nil && r.ID == id && strategy.Phase(r.Phase).Final(), nil
		})
	if err != nil {
		return controller.RolloutStatus{}, err
	}
	return *st.Rollout, nil
}

// WaitPromoted waits until rollout id has ended promoted.
func WaitPromoted(ctx context.Context, c *api.Client, app string, id int64) error {
	r, err := WaitEnded(ctx, c, app, id, time.Minute)
	if err != nil {
		return err
	}
	if r.Phase != string(strategy.Promoted) {
		return fmt.Errorf("rollout #%d ended %s (%s): %w", id, r.Phase, r.Reason, ErrRolloutEnded)
	}
	return nil
}

// Sleep waits d, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
