// Package telemetry exposes lastgood's own metrics at /metrics in the
// Prometheus text format: counters and histograms of rollouts, rollbacks,
// time to detect and time to roll back, kept by following the event log,
// and, read at scrape time, each app's traffic weights, its latest
// rollout's phase and the router's per-revision request counters and
// latency, labelled as an ingress would label them.
//
// It has its own prometheus.Registry (never the global one) and depends on
// the store and the router's stats type only, not on the controller.
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// Config says where the metrics come from. Store is required; Weights and
// Stats may be nil, and then their metrics are not exported.
type Config struct {
	// Store holds the apps, the rollouts and the event log.
	Store *store.Store
	// Weights returns an app's current traffic weights by revision, as
	// the router was last told (relative weights; telemetry exports each
	// revision's share in percent).
	Weights func(app string) map[int]int
	// Stats returns the router's cumulative per-revision counters of an
	// app.
	Stats func(app string) []router.RevisionStats
	// Log receives errors met while following the log or scraping; nil
	// discards them.
	Log *slog.Logger
}

// Telemetry keeps the metrics and serves them. Create it with New, follow
// the event log with Run, serve Handler at /metrics.
type Telemetry struct {
	cfg      Config
	registry *prometheus.Registry
	events   *eventMetrics
	// last is the sequence number of the last event counted.
	last atomic.Int64
	// rollouts tracks, per app, the latest rollout; only Run touches it.
	rollouts map[string]*tracked
}

// New builds the metrics of cfg on a registry of their own.
func New(cfg Config) *Telemetry {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	t := &Telemetry{
		cfg:      cfg,
		registry: prometheus.NewRegistry(),
		events:   newEventMetrics(),
		rollouts: map[string]*tracked{},
	}
	t.events.register(t.registry)
	t.registry.MustRegister(&scrapeCollector{cfg: cfg})
	return t
}

// Handler serves the metrics in the Prometheus text (or, when asked,
// OpenMetrics) format.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		ErrorLog:      slogAdapter{t.cfg.Log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Registry returns the registry the metrics live in, for tests and for
// callers that gather them another way.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// LastSeq is the sequence number of the last event the metrics count.
func (t *Telemetry) LastSeq() int64 { return t.last.Load() }

// slogAdapter lets promhttp report errors through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	a.log.LogAttrs(context.Background(), slog.LevelError, "metrics", slog.Any("err", v))
}
