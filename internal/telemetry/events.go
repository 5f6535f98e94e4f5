package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lastgood/lastgood/internal/store"
)

// Event types the metrics count.
const (
	typeStarted    = "rollout.started"
	typeWeight     = "traffic.weight"
	typePromoted   = "rollout.promoted"
	typeRolledBack = "rollout.rolled-back"
	typeAborted    = "rollout.aborted"
	typeVerdict    = "analysis.verdict"
	typeSLOBreach  = "rollout.slo-breached"
	// typeTargetUnhealthy: the revision a rollback returns (or returned)
	// to was found unhealthy.
	typeTargetUnhealthy = "rollout.target-unhealthy"
)

// triggerAnalysis is the trigger of a rollback decided by a failed check.
const triggerAnalysis = "analysis"

// unknown labels a strategy or trigger the store could not tell.
const unknown = "unknown"

// durationBuckets are the bounds, in seconds, of the time-to-detect and
// time-to-rollback histograms: from a fast interval's fraction of a second
// to half an hour of analysis.
var durationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}

// eventMetrics are the metrics kept from the event log.
type eventMetrics struct {
	started    *prometheus.CounterVec
	ended      *prometheus.CounterVec
	rollbacks  *prometheus.CounterVec
	toDetect   *prometheus.HistogramVec
	toRollback *prometheus.HistogramVec
	breaches   *prometheus.CounterVec
	unhealthy  *prometheus.CounterVec
}

func newEventMetrics() *eventMetrics {
	return &eventMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastgood_rollouts_total",
			Help: "Rollouts started, by app and strategy.",
		}, []string{"app", "strategy"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastgood_rollouts_ended_total",
			Help: "Rollouts ended, by app and phase (promoted, rolled-back, aborted). " +
				"A rollout rolled back inside its rollback window counts once promoted and once rolled-back.",
		}, []string{"app", "phase"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastgood_rollbacks_total",
			Help: "Rollbacks, aborts and undos, by app and trigger (analysis, progressDeadline, crashLoop, abort, undo, …).",
		}, []string{"app", "trigger"}),
		toDetect: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lastgood_time_to_detect_seconds",
			Help: "For rollbacks decided by a failed check: from the new revision's first traffic " +
				"(its first traffic.weight or rollout.promoted event) to the failing look.",
			Buckets: durationBuckets,
		}, []string{"app"}),
		toRollback: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lastgood_time_to_rollback_seconds",
			Help: "For every automatic rollback: from the deciding failing look to the rollback event " +
				"(0 when no check decided).",
			Buckets: durationBuckets,
		}, []string{"app"}),
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastgood_rollback_slo_breaches_total",
			Help: "Rollbacks slower than the app's rollback.slo, by app and figure (timeToDetect, timeToRollback).",
		}, []string{"app", "slo"}),
		unhealthy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastgood_target_unhealthy_total",
			Help: "rollout.target-unhealthy events, by app: the revision a rollback returns to was found unhealthy " +
				"(no ready replica, restarting, or its error rate above its own history) during a rollout, at a rollback or after it.",
		}, []string{"app"}),
	}
}

func (m *eventMetrics) register(r *prometheus.Registry) {
	r.MustRegister(m.started, m.ended, m.rollbacks, m.toDetect, m.toRollback, m.breaches, m.unhealthy)
}

// tracked is what the metrics remember of an app's latest rollout.
type tracked struct {
	id int64
	to int
	// firstTraffic is when the new revision first took traffic; zero
	// until it has.
	firstTraffic time.Time
	// fails holds, by check, when its latest failing look was taken.
	fails map[string]time.Time
	// lastFail is the latest failing look of any check.
	lastFail time.Time
}

// verdictData is the part of an analysis.verdict event's data read here.
type verdictData struct {
	Check   string    `json:"check"`
	Verdict string    `json:"verdict"`
	At      time.Time `json:"at"`
}

// decidingCheck is the check a rolled-back event's data carries when a
// failed check decided (the controller writes it without JSON tags).
type decidingCheck struct {
	Name string
	At   time.Time
}

// Run counts every event already in the log, then follows it until ctx
// ends, when it returns nil. When the subscription closes unexpectedly (it
// fell a buffer behind) it reads what it missed and subscribes again; it
// returns an error when the store cannot be read.
func (t *Telemetry) Run(ctx context.Context) error {
	if err := t.cfg.Store.Follow(ctx, t.last.Load(), func(e store.Event) { t.count(ctx, e) }); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

// count updates the metrics with one event, once.
func (t *Telemetry) count(ctx context.Context, e store.Event) {
	if e.Seq <= t.last.Load() {
		return
	}
	defer t.last.Store(e.Seq)
	switch e.Type {
	case typeStarted:
		t.rollouts[e.App] = &tracked{id: e.Rollout, to: e.Revision, fails: map[string]time.Time{}}
		strategy := unknown
		if ro, err := t.rollout(ctx, e); err == nil && ro.Strategy != "" {
			strategy = ro.Strategy
		}
		t.events.started.WithLabelValues(e.App, strategy).Inc()
		if strategy == "undo" { // `lastgood undo` is a manual rollback
			t.events.rollbacks.WithLabelValues(e.App, "undo").Inc()
		}
	case typeWeight:
		t.firstTraffic(e)
	case typePromoted:
		t.firstTraffic(e)
		t.events.ended.WithLabelValues(e.App, store.PhasePromoted).Inc()
	case typeVerdict:
		t.verdict(e)
	case typeRolledBack:
		t.events.ended.WithLabelValues(e.App, store.PhaseRolledBack).Inc()
		t.rolledBack(ctx, e)
	case typeSLOBreach:
		var d struct {
			Breached []string `json:"breached"`
		}
		if json.Unmarshal(e.Data, &d) == nil {
			for _, slo := range d.Breached {
				t.events.breaches.WithLabelValues(e.App, slo).Inc()
			}
		}
	case typeTargetUnhealthy:
		t.events.unhealthy.WithLabelValues(e.App).Inc()
	case typeAborted:
		t.events.ended.WithLabelValues(e.App, store.PhaseAborted).Inc()
		t.events.rollbacks.WithLabelValues(e.App, t.trigger(ctx, e)).Inc()
		delete(t.rollouts, e.App)
	}
}

// track returns what is known of the rollout e belongs to, nil when it
// is not the app's latest.
func (t *Telemetry) track(e store.Event) *tracked {
	if tr := t.rollouts[e.App]; tr != nil && tr.id == e.Rollout {
		return tr
	}
	return nil
}

func (t *Telemetry) firstTraffic(e store.Event) {
	if tr := t.track(e); tr != nil && tr.firstTraffic.IsZero() && e.Revision == tr.to {
		tr.firstTraffic = e.Time
	}
}

func (t *Telemetry) verdict(e store.Event) {
	tr := t.track(e)
	if tr == nil {
		return
	}
	var v verdictData
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.cfg.Log.Warn("telemetry: unreadable verdict", "seq", e.Seq, "err", err)
		return
	}
	if v.Verdict != "fail" {
		return
	}
	at := v.At
	if at.IsZero() {
		at = e.Time
	}
	tr.fails[v.Check] = at
	if at.After(tr.lastFail) {
		tr.lastFail = at
	}
}

// rolledBack counts a rollback and observes its time to detect and time
// to roll back.
func (t *Telemetry) rolledBack(ctx context.Context, e store.Event) {
	trigger := t.trigger(ctx, e)
	t.events.rollbacks.WithLabelValues(e.App, trigger).Inc()
	tr := t.track(e)
	delete(t.rollouts, e.App)
	look := decidingLook(e, tr)
	toRollback := time.Duration(0)
	if !look.IsZero() {
		toRollback = max(e.Time.Sub(look), 0)
	}
	t.events.toRollback.WithLabelValues(e.App).Observe(toRollback.Seconds())
	if trigger != triggerAnalysis || tr == nil || tr.firstTraffic.IsZero() {
		return
	}
	detected := look
	if detected.IsZero() {
		detected = e.Time
	}
	t.events.toDetect.WithLabelValues(e.App).Observe(max(detected.Sub(tr.firstTraffic), 0).Seconds())
}

// decidingLook is when the failing look that decided a rollback was
// taken: the time the rolled-back event's data names, else the latest
// failing verdict of the check it names, else the latest failing verdict
// of the rollout; zero when no check failed.
func decidingLook(e store.Event, tr *tracked) time.Time {
	var d decidingCheck
	if len(e.Data) > 0 && json.Unmarshal(e.Data, &d) == nil && !d.At.IsZero() {
		return d.At
	}
	if tr == nil {
		return time.Time{}
	}
	if at, ok := tr.fails[d.Name]; ok && d.Name != "" {
		return at
	}
	return tr.lastFail
}

// trigger is what decided the rollback or abort e records.
func (t *Telemetry) trigger(ctx context.Context, e store.Event) string {
	ro, err := t.rollout(ctx, e)
	if err != nil || ro.Trigger == "" {
		return unknown
	}
	return ro.Trigger
}

func (t *Telemetry) rollout(ctx context.Context, e store.Event) (store.Rollout, error) {
	ro, err := t.cfg.Store.Rollout(ctx, e.Rollout)
	if err != nil {
		t.cfg.Log.Warn("telemetry: look up rollout", "rollout", e.Rollout, "seq", e.Seq, "err", err)
	}
	return ro, err
}
