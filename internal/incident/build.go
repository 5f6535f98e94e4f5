package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/revdiff"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// Event types the incident reads.
const (
	typeStarted    = "rollout.started"
	typeWeight     = "traffic.weight"
	typePromoted   = "rollout.promoted"
	typeVerdict    = "analysis.verdict"
	typeRolledBack = "rollout.rolled-back"
	typeAborted    = "rollout.aborted"
	// typeTargetUnhealthy: the revision a rollback returns to is unhealthy.
	typeTargetUnhealthy = "rollout.target-unhealthy"
	// typeRecordedLate follows a rollback whose traffic moved before the
	// store could record it (controller.TypeRecordedLate).
	typeRecordedLate = "rollout.recorded-late"
	// TypeFailed is the event recorded when a bundle cannot be written.
	TypeFailed = "incident.failed"
)

// Records reports whether an event of this type, in a rollout of this
// strategy, ends the rollout with an incident: a rollback, an abort, and
// the promotion of an undo.
func Records(eventType, strategy string) bool {
	return eventType == typeRolledBack || eventType == typeAborted || (eventType == typePromoted && strategy == strategyUndo)
}

// Triggers that mean a person asked for the rollback.
var manualTriggers = map[string]bool{"abort": true, "undo": true, "delete": true}

// decidingCheck is the check a rolled-back event's data carries when a
// failed check decided (strategy.Check, written without JSON tags).
type decidingCheck struct {
	Name    string
	Verdict string
	Reason  string
	At      time.Time
}

// verdictData is the part of an analysis.Result the bundle reads.
type verdictData struct {
	Check   string    `json:"check"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// build assembles the incident of the rollout that end ended, from the
// store, the log files and the samples in s (nil when none).
// watched says that this recorder saw the rollout start, so a revision
// its router counters never named took no request.
func (r *Recorder) build(ctx context.Context, end store.Event, s *series, watched bool) (*Incident, error) {
	ro, err := r.cfg.Store.Rollout(ctx, end.Rollout)
	if err != nil {
		return nil, fmt.Errorf("rollout %d: %w", end.Rollout, err)
	}
	evs, err := r.cfg.Store.Events(ctx, store.EventQuery{Rollout: ro.ID})
	if err != nil {
		return nil, fmt.Errorf("events of rollout %d: %w", ro.ID, err)
	}
	inc := &Incident{
		Schema: SchemaVersion, ID: ID(ro.App, ro.Number), App: ro.App, Rollout: ro.ID,
		From: ro.From, To: ro.To, Strategy: ro.Strategy,
		Kind: KindRolledBack, Trigger: ro.Trigger, Reason: redact.Text(ro.Reason),
		Started: ms(ro.Started), Decided: ms(end.Time), Written: ms(r.cfg.Now()),
		Timeline: []Entry{}, Verdicts: []Verdict{}, Series: []Point{}, Resources: []Usage{}, Logs: []Log{}, Diff: []manifest.Change{}, ArtifactChanges: []revdiff.Artifact{},
	}
	undo := end.Type == typePromoted
	switch {
	case end.Type == typeAborted:
		inc.Kind = KindAborted
	case undo:
		// An undo rollout goes from the revision undone to the restored
		// one: the incident is about the one undone.
		inc.Kind, inc.From, inc.To = KindUndone, ro.To, ro.From
		inc.Trigger = "undo"
		inc.Reason = fmt.Sprintf("`lastgood undo`: revision %d taken out, the content of an earlier revision back as revision %d", ro.From, ro.To)
		took := end.Time.Sub(ro.Started).Milliseconds()
		inc.Figures.TimeToRollbackMs = &took
	}
	inc.Manual = inc.Kind != KindRolledBack || manualTriggers[ro.Trigger]
	inc.ProxyErrors = r.proxyErrors(ro.App, inc.From, inc.To)

	var deciding *decidingCheck
	if len(end.Data) > 0 {
		var d decidingCheck
		if json.Unmarshal(end.Data, &d) == nil && d.Name != "" {
			deciding = &d
		}
	}
	decidingIdx := -1
	for _, e := range evs {
		if e.Type == typeRecordedLate && e.Seq > end.Seq {
			recordedLate(inc, e)
		}
		if e.Seq > end.Seq {
			continue // what happened after the decision belongs to recovery
		}
		inc.Timeline = append(inc.Timeline, Entry{
			Seq: e.Seq, At: ms(e.Time), OffsetMs: e.Time.Sub(ro.Started).Milliseconds(),
			Type: e.Type, Revision: e.Revision, Message: redact.Text(e.Message),
		})
		switch e.Type {
		case typeTargetUnhealthy:
			inc.Target = append(inc.Target, redact.Text(e.Message))
		case typeWeight, typePromoted:
			if inc.Figures.FirstTraffic == nil && e.Revision == ro.To && !undo {
				t := ms(e.Time)
				inc.Figures.FirstTraffic = &t
			}
		case typeVerdict:
			var v verdictData
			if err := json.Unmarshal(e.Data, &v); err != nil {
				inc.Warnings = append(inc.Warnings, fmt.Sprintf("event %d: unreadable verdict: %v", e.Seq, err))
			}
			inc.Verdicts = append(inc.Verdicts, Verdict{Seq: e.Seq, At: ms(orTime(v.At, e.Time)), Check: v.Check,
				Verdict: v.Verdict, Reason: redact.Text(v.Reason), Result: redact.JSON(e.Data)})
			if deciding != nil && v.Check == deciding.Name && v.Verdict == "fail" {
				decidingIdx = len(inc.Verdicts) - 1
			}
		}
	}
	if decidingIdx >= 0 {
		inc.Verdicts[decidingIdx].Deciding = true
	}
	r.figures(inc, end, deciding, decidingIdx)
	if s != nil {
		inc.Series = s.between(ro.Started.Add(-r.cfg.Interval), end.Time)
		inc.Resources = s.usage.between(ro.Started.Add(-r.cfg.Interval), end.Time)
	}
	r.blastRadius(inc, watched)
	r.diff(ctx, inc)
	r.logs(inc)
	r.traces(ctx, inc)
	inc.Database = schemaOf(evs)
	return inc, nil
}

// recordedLate notes that the decision waited for the store while its
// traffic switch was already applied.
func recordedLate(inc *Incident, e store.Event) {
	var d struct {
		RecordDelayMs *int64 `json:"recordDelayMs"`
	}
	if json.Unmarshal(e.Data, &d) == nil && d.RecordDelayMs != nil {
		inc.Figures.RecordDelayMs = d.RecordDelayMs
	}
	inc.Warnings = append(inc.Warnings, redact.Text("recorded late: "+e.Message+
		"; time to detect and time to roll back run to the decision, not to its record"))
}

// figures computes time to detect and time to roll back.
func (r *Recorder) figures(inc *Incident, end store.Event, deciding *decidingCheck, idx int) {
	var look time.Time
	switch {
	case deciding != nil && !deciding.At.IsZero():
		look = deciding.At
	case idx >= 0:
		look = inc.Verdicts[idx].At.Time
	}
	decision := end.Time
	if !look.IsZero() {
		l := ms(look)
		inc.Figures.DecidingLook = &l
		decision = look
		toRollback := end.Time.Sub(look).Milliseconds()
		inc.Figures.TimeToRollbackMs = &toRollback
	} else if inc.Figures.TimeToRollbackMs == nil {
		// no look decided: the rollback event is the decision (a crash
		// loop, a deadline, an abort), so traffic moved back at once
		var zero int64
		inc.Figures.TimeToRollbackMs = &zero
	}
	if ft := inc.Figures.FirstTraffic; ft != nil {
		detect := decision.Sub(ft.Time).Milliseconds()
		inc.Figures.TimeToDetectMs = &detect
	}
}

// blastRadius takes what the failed revision served from the router now:
// traffic left it at the decision, so its counters no longer move. The
// router counts every revision it was ever given a route to, so when
// this recorder watched the rollout from its start and the router has no
// counters of the failed revision, that revision served nothing: 0
// requests, not an unknown figure.
func (r *Recorder) blastRadius(inc *Incident, watched bool) {
	if r.cfg.Stats == nil {
		return
	}
	for _, st := range r.cfg.Stats(inc.App) {
		if st.Revision == inc.To {
			inc.Figures.BlastRadius = &BlastRadius{Revision: st.Revision, Requests: st.Requests, Errors: st.Errors}
			return
		}
	}
	if watched && inc.Figures.BlastRadius == nil {
		inc.Figures.BlastRadius = &BlastRadius{Revision: inc.To}
	}
}

// diff compares the two revisions — manifest fields, artifact digests and
// the text of text artifacts, secrets redacted — and keeps their digests.
func (r *Recorder) diff(ctx context.Context, inc *Incident) {
	var revs [2]*store.Revision
	for i, n := range []int{inc.From, inc.To} {
		if n == 0 {
			continue
		}
		rev, err := r.cfg.Store.Revision(ctx, inc.App, n)
		if err != nil {
			inc.Warnings = append(inc.Warnings, fmt.Sprintf("revision %d: %v", n, err))
			continue
		}
		revs[i] = &rev
		d := &RevisionDigests{Revision: n, Digest: rev.Digest, Artifacts: rev.Artifacts}
		if i == 0 {
			inc.Artifacts.From = d
		} else {
			inc.Artifacts.To = d
		}
	}
	if revs[0] == nil && revs[1] == nil {
		return
	}
	d, err := revdiff.Compare(revs[0], revs[1], r.cfg.Artifacts)
	if err != nil {
		inc.Warnings = append(inc.Warnings, redact.Text(err.Error()))
		return
	}
	inc.Diff, inc.ArtifactChanges = d.Changes, d.Artifacts
}

// logs keeps the tail of every replica log of the failed revision.
func (r *Recorder) logs(inc *Incident) {
	if r.cfg.Logs == nil {
		return
	}
	paths := r.cfg.Logs(inc.App, inc.To)
	if len(paths) > maxLogFiles {
		inc.Warnings = append(inc.Warnings, fmt.Sprintf("%d replica logs; kept the first %d", len(paths), maxLogFiles))
		paths = paths[:maxLogFiles]
	}
	for _, p := range paths {
		inc.Logs = append(inc.Logs, tail(inc.To, p))
	}
}

func orTime(t, alt time.Time) time.Time {
	if t.IsZero() {
		return alt
	}
	return t
}

// proxyErrors returns the router's proxy errors of the two revisions,
// redacted.
func (r *Recorder) proxyErrors(app string, revs ...int) []ProxyErrors {
	if r.cfg.Stats == nil {
		return nil
	}
	var out []ProxyErrors
	for _, st := range r.cfg.Stats(app) {
		if st.ProxyErrors == 0 || !slices.Contains(revs, st.Revision) {
			continue
		}
		pe := ProxyErrors{Revision: st.Revision, Count: st.ProxyErrors, Samples: []router.ProxyError{}}
		for _, e := range st.RecentProxyErrors {
			e.Request, e.Error = redact.Text(e.Request), redact.Text(e.Error)
			pe.Samples = append(pe.Samples, e)
		}
		out = append(out, pe)
	}
	return out
}
