package controller

import (
	"context"
	"fmt"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/strategy"
)

// revision loads a revision of a, caching it: revisions never change.
func (c *Controller) revision(ctx context.Context, a *appState, n int) (*revision, error) {
	if r := a.revisions[n]; r != nil {
		return r, nil
	}
	r, err := c.cfg.Store.Revision(ctx, a.app.Name, n)
	if err != nil {
		return nil, fmt.Errorf("load revision %d of %s: %w", n, a.app.Name, err)
	}
	m, err := manifest.FromJSON(r.Manifest)
	if err != nil {
		return nil, fmt.Errorf("decode revision %d of %s: %w", n, a.app.Name, err)
	}
	rev := &revision{Revision: r, manifest: m}
	a.revisions[n] = rev
	return rev, nil
}

func (c *Controller) manifest(ctx context.Context, a *appState, n int) (*manifest.App, error) {
	if n == 0 {
		return nil, fmt.Errorf("%s has no revision yet: %w", a.app.Name, ErrNotFound)
	}
	r, err := c.revision(ctx, a, n)
	if err != nil {
		return nil, err
	}
	return r.manifest, nil
}

func (c *Controller) spec(ctx context.Context, a *appState, n int) (strategy.Spec, error) {
	m, err := c.manifest(ctx, a, n)
	if err != nil {
		return strategy.Spec{}, err
	}
	return strategy.SpecOf(m), nil
}

func (c *Controller) workload(ctx context.Context, a *appState, n int) (Workload, error) {
	r, err := c.revision(ctx, a, n)
	if err != nil {
		return Workload{}, err
	}
	return Workload{App: a.app.Name, Revision: n, Manifest: r.manifest, Artifacts: r.Artifacts}, nil
}
