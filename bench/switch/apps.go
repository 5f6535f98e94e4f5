package main

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

// benchApp is one app the benchmark delivers: a directory holding a copy
// of the sample app and the manifest.
type benchApp struct {
	name, dir, listen string
}

func newBenchApp(root, name, sampleApp string) (*benchApp, error) {
	a := &benchApp{name: name, dir: filepath.Join(root, name)}
	if err := os.MkdirAll(filepath.Join(a.dir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	b, err := os.ReadFile(sampleApp)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "bin", "web"), b, 0o755); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	if a.listen, err = freeAddr(); err != nil {
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

// manifest writes the app's manifest with SWITCH=n in the environment (a
// new n is a new revision) and returns its path.
func (a *benchApp) manifest(n int) (string, error) {
	text := fmt.Sprintf(`name: %s
listen: %s
replicas: 2
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: {SWITCH: "%d"}
probes:
  readiness: {http: /healthz, period: 100ms}
strategy:
  blueGreen: {autoPromote: false}
rollback:
  progressDeadline: 1m
  window: 10m
`, a.name, a.listen, n)
	p := filepath.Join(a.dir, "app.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	return p, nil
}

// apply applies the app's manifest with SWITCH=n and returns the rollout
// it started.
func (a *benchApp) apply(ctx context.Context, c *api.Client, n int) (controller.ApplyResult, error) {
	file, err := a.manifest(n)
	if err != nil {
		return controller.ApplyResult{}, err
	}
	res, err := c.ApplyFile(ctx, file)
	if err != nil {
		return res, fmt.Errorf("apply %s SWITCH=%d: %w", a.name, n, err)
	}
	if res.Rollout == 0 {
		return res, fmt.Errorf("apply %s SWITCH=%d started no rollout: %s", a.name, n, res.Message)
	}
	return res, nil
}

// errRolloutEnded is returned when a rollout ends while it was expected to
// wait for promote.
var errRolloutEnded = errors.New("rollout ended")

// waitFor polls the app's status every 10ms until ok says so, for at most
// limit.
func waitFor(ctx context.Context, c *api.Client, app string, limit time.Duration, what string,
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
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitPromotePause waits until rollout id waits for promote: its new
// replicas are ready.
func waitPromotePause(ctx context.Context, c *api.Client, app string, id int64) error {
	_, err := waitFor(ctx, c, app, time.Minute, fmt.Sprintf("rollout #%d waiting for promote", id),
		func(st controller.AppStatus) (bool, error) {
			r := st.Rollout
			if r == nil || r.ID != id {
				return false, nil
			}
			if strategy.Phase(r.Phase).Final() {
				return false, fmt.Errorf("rollout #%d %s (%s) before promote: %w", id, r.Phase, r.Reason, errRolloutEnded)
			}
			return r.Detail.Phase == strategy.Paused && r.Detail.PauseReason == strategy.PausePromote, nil
		})
	return err
}

// waitPromoted waits until rollout id has ended promoted.
func waitPromoted(ctx context.Context, c *api.Client, app string, id int64) error {
	_, err := waitFor(ctx, c, app, time.Minute, fmt.Sprintf("rollout #%d promoted", id),
		func(st controller.AppStatus) (bool, error) {
			r := st.Rollout
			if r == nil || r.ID != id || !strategy.Phase(r.Phase).Final() {
				return false, nil
			}
			if r.Phase != string(strategy.Promoted) {
				return false, fmt.Errorf("rollout #%d ended %s (%s): %w", id, r.Phase, r.Reason, errRolloutEnded)
			}
			return true, nil
		})
	return err
}
