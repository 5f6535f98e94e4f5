package otlp

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The receiver keeps a few whole traces per revision for incident
// bundles: the slowest tasks, the last ones that failed, and the first
// task of each shape, so that the bundle can show those whose shape the
// stable revision uses least. A trace is kept whole only when its spans
// were captured as they arrived: the first maxCaptured open traces at a
// time are; the others are only counted. Everything is bounded: the
// spans of a trace, the attributes and events of a span, the length of
// a value. Values are kept as sent (prompt contents too, truncated):
// the incident redacts them when it writes the bundle
// (analysis.traces.keepContent).
const (
	maxCaptured      = 128 // open traces whose spans are captured
	maxTraceSpans    = 32  // spans kept of one trace
	maxSpanAttrs     = 12  // attributes kept of one span or event
	maxSpanEvents    = 4   // events kept of one span
	maxValueLen      = 256 // bytes kept of one value
	keptSlowest      = 3
	keptFailed       = 3
	keptShapes       = 16
	keptUnlikeShapes = 3 // shapes a revision's samples show, least used by the stable first
)

// TraceSample is one trace kept whole: its spans in start order, each
// naming its parent.
type TraceSample struct {
	TraceID string `json:"traceId"`
	// Why says why it was kept: "slowest", "failed", "shape".
	Why      []string      `json:"why"`
	Shape    string        `json:"shape"`
	Duration time.Duration `json:"durationNs"`
	Failed   bool          `json:"failed"`
	Spans    []SpanRecord  `json:"spans"`
	// Dropped counts spans past maxTraceSpans.
	Dropped int `json:"droppedSpans,omitempty"`
}

// SpanRecord is one span of a TraceSample.
type SpanRecord struct {
	SpanID   string        `json:"spanId"`
	ParentID string        `json:"parentId,omitempty"`
	Name     string        `json:"name"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"durationNs"`
	Error    bool          `json:"error,omitempty"`
	Status   string        `json:"status,omitempty"`
	Attrs    []Attr        `json:"attributes,omitempty"`
	Events   []EventRecord `json:"events,omitempty"`
}

// Attr is one attribute, its value as text.
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EventRecord is one span event.
type EventRecord struct {
	Name  string `json:"name"`
	Attrs []Attr `json:"attributes,omitempty"`
}

func clip(s string) string {
	if len(s) <= maxValueLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxValueLen], "") + "…"
}

func attrsOf(m pcommon.Map) []Attr {
	var out []Attr
	m.Range(func(k string, v pcommon.Value) bool {
		out = append(out, Attr{clip(k), clip(v.AsString())})
		return len(out) < maxSpanAttrs
	})
	return out
}

func record(s ptrace.Span) SpanRecord {
	rec := SpanRecord{
		SpanID: s.SpanID().String(), Name: clip(s.Name()),
		Start: s.StartTimestamp().AsTime(), Error: failed(s), Status: clip(s.Status().Message()),
		Attrs: attrsOf(s.Attributes()),
	}
	if p := s.ParentSpanID(); !p.IsEmpty() {
		rec.ParentID = p.String()
	}
	if e, b := s.EndTimestamp(), s.StartTimestamp(); e > b {
		rec.Duration = time.Duration(e - b)
	}
	evs := s.Events()
	for i := range min(evs.Len(), maxSpanEvents) {
		e := evs.At(i)
		rec.Events = append(rec.Events, EventRecord{Name: clip(e.Name()), Attrs: attrsOf(e.Attributes())})
	}
	return rec
}

// capture adds a span to a captured task's spans: a reference, valid
// while its request is ingested; keep copies them out. Nothing of a span
// is copied unless the task is still open when Ingest returns or is kept
// at its end, so capturing costs little more than counting.
func (t *task) capture(s ptrace.Span) {
	t.failed = t.failed || failed(s)
	if len(t.spans)+len(t.live) >= maxTraceSpans {
		t.dropped++
		return
	}
	t.live = append(t.live, s)
}

// keep copies the spans captured by reference.
func (t *task) keep() {
	for _, s := range t.live {
		t.spans = append(t.spans, record(s))
	}
	t.live = nil
}

// traceSamples are the traces kept of one revision.
type traceSamples struct {
	slowest []TraceSample // longest first
	failed  []TraceSample // oldest first
	shapes  map[string]TraceSample
	order   []string // shapes in the order first seen
}

// offer keeps a completed task's trace if it is among the slowest,
// failed, or the first of its shape; only then are its spans copied.
func (ts *traceSamples) offer(agent ptrace.Span, tk *task) {
	var d time.Duration
	if e, b := agent.EndTimestamp(), agent.StartTimestamp(); e > b {
		d = time.Duration(e - b)
	}
	bad := tk.failed || failed(agent)
	shape := tk.shape()
	_, seen := ts.shapes[shape]
	slow := len(ts.slowest) < keptSlowest || d > ts.slowest[len(ts.slowest)-1].Duration
	if !slow && !bad && (seen || len(ts.shapes) >= keptShapes) {
		return
	}
	tk.keep()
	t := completed(agent, tk, shape)
	if slow {
		ts.slowest = append(ts.slowest, t)
		slices.SortStableFunc(ts.slowest, func(a, b TraceSample) int { return cmp.Compare(b.Duration, a.Duration) })
		ts.slowest = ts.slowest[:min(len(ts.slowest), keptSlowest)]
	}
	if t.Failed {
		ts.failed = append(ts.failed, t)
		if len(ts.failed) > keptFailed {
			ts.failed = ts.failed[1:]
		}
	}
	if ts.shapes == nil {
		ts.shapes = map[string]TraceSample{}
	}
	if _, ok := ts.shapes[t.Shape]; !ok && len(ts.shapes) < keptShapes {
		ts.shapes[t.Shape] = t
		ts.order = append(ts.order, t.Shape)
	}
}

// completed turns a captured task (its spans kept) and its invoke_agent
// span into a TraceSample.
func completed(agent ptrace.Span, t *task, shape string) TraceSample {
	rec := record(agent)
	out := TraceSample{TraceID: agent.TraceID().String(), Shape: shape, Duration: rec.Duration, Failed: rec.Error || t.failed, Dropped: t.dropped}
	out.Spans = append(slices.Clone(t.spans), rec)
	slices.SortStableFunc(out.Spans, func(a, b SpanRecord) int { return a.Start.Compare(b.Start) })
	return out
}

// TraceSamples returns the traces kept of an app's revision for an
// incident: its slowest tasks, its last failed ones, and the first task
// of each of the keptUnlikeShapes shapes that the stable revision's
// tasks use least (none of them, first). A trace kept for several
// reasons appears once, with each reason.
func (r *Receiver) TraceSamples(app string, revision, stable int) []TraceSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.samples[Key{App: app, Revision: revision}]
	if ts == nil {
		return nil
	}
	var stableShapes map[string]uint64
	if a := r.aggs[Key{App: app, Revision: stable}]; a != nil {
		stableShapes = a.Shapes
	}
	var out []TraceSample
	add := func(t TraceSample, why string) {
		for i := range out {
			if out[i].TraceID == t.TraceID {
				out[i].Why = append(out[i].Why, why)
				return
			}
		}
		t.Why = []string{why}
		out = append(out, t)
	}
	for _, t := range ts.slowest {
		add(t, "slowest")
	}
	for _, t := range slices.Backward(ts.failed) {
		add(t, "failed")
	}
	shapes := slices.Clone(ts.order)
	slices.SortStableFunc(shapes, func(a, b string) int { return cmp.Compare(stableShapes[a], stableShapes[b]) })
	for _, s := range shapes[:min(len(shapes), keptUnlikeShapes)] {
		add(ts.shapes[s], "shape")
	}
	return out
}
