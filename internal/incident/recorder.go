package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/revdiff"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/signal/otlp"
	"github.com/lastgood/lastgood/internal/store"
)

// Config is what a Recorder reads and where it writes.
type Config struct {
	Store *store.Store
	// Dir is the incidents folder, <data>/incidents.
	Dir string
	// Stats returns the router's cumulative counters of an app now.
	Stats func(app string) []router.RevisionStats
	// Logs returns the paths of a revision's replica log files.
	Logs func(app string, revision int) []string
	// Artifacts holds the revisions' artifacts, for the text diff of
	// config files; nil compares artifacts by digest only.
	Artifacts revdiff.Blobs
	// Processes returns an app's running replicas, whose memory, CPU and
	// open files are sampled with the router's counters; nil for none.
	Processes func(app string) []Process
	// Traces returns the traces the OTLP receiver kept of an app's
	// revision, the failing one, judged against stable (traces.go); nil
	// for none.
	Traces func(app string, revision, stable int) []otlp.TraceSample
	Now    func() time.Time
	// Interval is how often the router counters are sampled; default 1s.
	Interval time.Duration
	// Recovery is how long after the decision the bundle is written again
	// with the recovery series and time to recover; default 5s, negative
	// for never.
	Recovery time.Duration
	// Linger is how long after a rollout ends its app is still sampled, so
	// a rollback inside the rollback window has its series; default 10m.
	Linger time.Duration
	Log    *slog.Logger
}

// Recorder writes an incident bundle for every rollback and abort.
type Recorder struct {
	cfg     Config
	tracked map[string]*track
	pending []pendingRewrite
	last    int64 // seq of the last event handled
}

// track is one app being sampled.
type track struct {
	series  series
	active  bool      // a rollout is in progress
	endedAt time.Time // when the last rollout ended
	// started is the rollout whose start this recorder saw.
	started int64
}

// pendingRewrite is a bundle to write again with its recovery series.
type pendingRewrite struct {
	inc *Incident
	end store.Event
	due time.Time
}

// seedWindow bounds how old a rollback may be for Run to write its
// missing bundle when it starts.
const seedWindow = 24 * time.Hour

// New returns a Recorder; cfg.Store and cfg.Dir are required.
func New(cfg Config) *Recorder {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Recovery == 0 {
		cfg.Recovery = 5 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{cfg: cfg, tracked: map[string]*track{}}
}

// Run follows the event log until ctx ends, sampling the router every
// Interval for apps with a rollout in progress and writing a bundle at
// every rollout.rolled-back and rollout.aborted. When it starts, it also
// writes the missing bundles of the last day's rollbacks. It returns nil
// when ctx ends and an error only when the store can no longer be read.
func (r *Recorder) Run(ctx context.Context) error {
	err := r.run(ctx)
	if ctx.Err() != nil {
		return nil // stopped, whatever was being read at the time
	}
	return err
}

func (r *Recorder) run(ctx context.Context) error {
	sub := r.cfg.Store.Subscribe(ctx)
	r.renameOldBundles(ctx) // before seed, which looks bundles up by id
	if err := r.seed(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sub:
			if ok {
				r.handle(ctx, e)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			// fell behind (or the store closed): subscribe again, then read
			// what was missed; seq dedupes the overlap
			sub = r.cfg.Store.Subscribe(ctx)
			if err := r.catchUp(ctx); err != nil {
				return err
			}
		case <-tick.C:
			r.sample()
			r.rewriteDue(ctx)
		}
	}
}

func (r *Recorder) catchUp(ctx context.Context) error {
	if r.last == 0 {
		return r.seed(ctx)
	}
	missed, err := r.cfg.Store.Events(ctx, store.EventQuery{AfterSeq: r.last})
	if err != nil {
		return fmt.Errorf("incident recorder: catch up after event %d: %w", r.last, err)
	}
	for _, e := range missed {
		r.handle(ctx, e)
	}
	return nil
}

// seed tracks the rollouts in progress and writes the bundles of recent
// rollbacks that have none.
func (r *Recorder) seed(ctx context.Context) error {
	apps, err := r.cfg.Store.Apps(ctx)
	if err != nil {
		return fmt.Errorf("incident recorder: %w", err)
	}
	now := r.cfg.Now()
	for _, a := range apps {
		ros, err := r.cfg.Store.Rollouts(ctx, a.Name, 10)
		if err != nil {
			return fmt.Errorf("incident recorder: %w", err)
		}
		for _, ro := range ros {
			if !ro.Done() {
				r.app(ro.App).active = true
				continue
			}
			if (ro.Phase != store.PhaseRolledBack && ro.Phase != store.PhaseAborted) ||
				ro.Ended == nil || now.Sub(*ro.Ended) > seedWindow || r.exists(ID(ro.App, ro.Number)) {
				continue
			}
			evs, err := r.cfg.Store.Events(ctx, store.EventQuery{Rollout: ro.ID})
			if err != nil {
				return fmt.Errorf("incident recorder: %w", err)
			}
			for i := len(evs) - 1; i >= 0; i-- {
				if evs[i].Type == typeRolledBack || evs[i].Type == typeAborted {
					r.record(ctx, evs[i])
					break
				}
			}
		}
	}
	return nil
}

func (r *Recorder) exists(id string) bool {
	_, err := os.Stat(filepath.Join(r.cfg.Dir, id, FileName))
	return err == nil
}

func (r *Recorder) app(name string) *track {
	t := r.tracked[name]
	if t == nil {
		t = &track{}
		r.tracked[name] = t
	}
	return t
}

// handle follows one event.
// strategyUndo is the strategy of a rollout made by `lastgood undo`.
const strategyUndo = "undo"

func (r *Recorder) handle(ctx context.Context, e store.Event) {
	if e.Seq <= r.last {
		return
	}
	r.last = e.Seq
	if e.App == "" || e.Rollout == 0 {
		return
	}
	switch e.Type {
	case typeStarted:
		t := r.app(e.App)
		t.active, t.started = true, e.Rollout
		r.sampleApp(e.App, t) // the baseline at the start
	case "traffic.weight":
		r.sampleApp(e.App, r.app(e.App)) // the new revision's replicas as it first takes traffic
	case typePromoted:
		t := r.app(e.App)
		t.active, t.endedAt = false, e.Time
		if ro, err := r.cfg.Store.Rollout(ctx, e.Rollout); err == nil && ro.Strategy == strategyUndo {
			r.sampleAt(e.App, t, e.Time.Add(-time.Millisecond))
			r.record(ctx, e) // `lastgood undo` is a manual rollback
		}
	case typeRolledBack, typeAborted:
		t := r.app(e.App)
		t.active, t.endedAt = false, e.Time
		r.record(ctx, e)
	default:
		if schemaEvent(e.Type) {
			r.schemaDecided(ctx, e)
		}
	}
}

// record writes the bundle of the rollout that end ended; a failure is
// recorded in the event log, never fatal.
func (r *Recorder) record(ctx context.Context, end store.Event) {
	// The recovery rewrite is due Recovery after the decision was seen,
	// not after the bundle (and the SLO check) took its time to write.
	due := r.cfg.Now().Add(r.cfg.Recovery)
	var s *series
	watched := false
	if t := r.tracked[end.App]; t != nil {
		watched = t.started == end.Rollout
		// One more sample now, at the decision: the failed replicas may be
		// stopped a moment later, and a fast rollback can end between two
		// ticks. It is stamped just before the decision, so that it belongs
		// to the rollout and not to the recovery.
		r.sampleAt(end.App, t, end.Time.Add(-time.Millisecond))
		s = &t.series
	}
	inc, err := r.build(ctx, end, s, watched)
	if err == nil {
		inc.Complete = r.cfg.Recovery < 0
		r.witness(ctx, inc)
		err = write(r.cfg.Dir, inc)
	}
	if err != nil {
		r.failed(ctx, end, err)
		return
	}
	r.cfg.Log.Info("incident written", "id", inc.ID, "app", inc.App, "rollout", inc.Rollout)
	// An undo rolled back inside its window ends twice: the bundle of its
	// rollback replaces the one of its promotion, so that one's recovery
	// rewrite must not bring it back.
	r.pending = slices.DeleteFunc(r.pending, func(p pendingRewrite) bool { return p.inc.ID == inc.ID })
	if r.cfg.Recovery > 0 {
		r.pending = append(r.pending, pendingRewrite{inc: inc, end: end, due: due})
	}
	r.checkSLO(ctx, end, inc)
}

// witness records the log's head in the bundle, for audit verify.
func (r *Recorder) witness(ctx context.Context, inc *Incident) {
	if h, err := r.cfg.Store.Head(ctx); err == nil {
		inc.Chain = &h
	}
}

// failed records that a bundle could not be written.
func (r *Recorder) failed(ctx context.Context, end store.Event, cause error) {
	id := r.idOf(ctx, end.App, end.Rollout)
	r.cfg.Log.Error("write incident", "id", id, "err", cause)
	err := r.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{App: end.App, Rollout: end.Rollout, Revision: end.Revision, Type: TypeFailed,
			Message: redact.Text(fmt.Sprintf("cannot write incident %s: %v", id, cause))})
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		r.cfg.Log.Error("record incident failure", "id", id, "err", err)
	}
}

// sample takes one sample of every app with a rollout in progress or one
// that ended less than Linger ago, and forgets the others.
func (r *Recorder) sample() {
	now := r.cfg.Now()
	for name, t := range r.tracked {
		if !t.active && now.Sub(t.endedAt) > r.cfg.Linger {
			delete(r.tracked, name)
			continue
		}
		r.sampleApp(name, t)
	}
}

func (r *Recorder) sampleApp(name string, t *track) { r.sampleAt(name, t, r.cfg.Now()) }

func (r *Recorder) sampleAt(name string, t *track, now time.Time) {
	if r.cfg.Processes != nil {
		t.series.usage.sample(now, r.cfg.Processes(name))
	}
	if r.cfg.Stats != nil {
		t.series.sample(now, r.cfg.Stats(name))
	}
}

// rewriteDue writes again the bundles whose recovery period is over, with
// the recovery series, the events after the decision and time to recover.
func (r *Recorder) rewriteDue(ctx context.Context) {
	now := r.cfg.Now()
	keep := r.pending[:0]
	for _, p := range r.pending {
		if now.Before(p.due) {
			keep = append(keep, p)
			continue
		}
		r.addRecovery(ctx, p, now)
		r.witness(ctx, p.inc)
		if err := write(r.cfg.Dir, p.inc); err != nil {
			r.failed(ctx, p.end, err)
		}
	}
	clear(r.pending[len(keep):])
	r.pending = keep
}

func (r *Recorder) addRecovery(ctx context.Context, p pendingRewrite, now time.Time) {
	inc := p.inc
	inc.Complete, inc.Written = true, ms(now)
	servedAfter := false // the failed revision has points after the decision
	if t := r.tracked[inc.App]; t != nil {
		for _, pt := range t.series.between(p.end.Time, now) {
			if !pt.At.After(inc.Decided.Time) {
				continue // already in the bundle
			}
			pt.Recovery = true
			inc.Series = append(inc.Series, pt)
			servedAfter = servedAfter || pt.Revision == inc.To
			if inc.Figures.TimeToRecoverMs == nil && pt.Revision == inc.To && pt.Requests == 0 && pt.InFlight == 0 {
				d := pt.At.Sub(p.end.Time).Milliseconds()
				inc.Figures.TimeToRecoverMs = &d
			}
		}
	}
	if after, err := r.cfg.Store.Events(ctx, store.EventQuery{Rollout: inc.Rollout, AfterSeq: p.end.Seq}); err == nil {
		for _, e := range after {
			inc.Timeline = append(inc.Timeline, Entry{Seq: e.Seq, At: ms(e.Time), OffsetMs: e.Time.Sub(inc.Started.Time).Milliseconds(),
				Type: e.Type, Revision: e.Revision, Message: redact.Text(e.Message)})
			if e.Type == typeTargetUnhealthy {
				inc.Target = append(inc.Target, redact.Text(e.Message))
			}
		}
	}
	r.schema(ctx, inc)
	r.blastRadius(inc, false)
	if br := inc.Figures.BlastRadius; inc.Figures.TimeToRecoverMs == nil && !servedAfter && br != nil && br.Requests == 0 {
		var zero int64 // it never served, so nothing had to recover
		inc.Figures.TimeToRecoverMs = &zero
	}
}
