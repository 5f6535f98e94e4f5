package otlp

import (
	"cmp"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Key names the spans that are aggregated together: one revision of an
// app, or, for a cohort attribute, the spans of that revision carrying one
// value of it (a feature flag's variant).
type Key struct {
	App      string
	Revision int
	// Attribute and Value name a cohort inside the revision; both empty
	// for the whole revision.
	Attribute, Value string
}

// Rate counts spans of one kind and how many of them failed (for finish
// reasons: were cut off).
type Rate struct {
	N      uint64 `json:"n"`
	Failed uint64 `json:"failed"`
}

// distBuckets is the number of buckets of a Dist: value 0, then one per
// power of two of a uint64.
const distBuckets = 65

// Dist is a distribution of per-task values (tokens, tool calls) in
// bounded memory: the count, the sum and sum of squares, the largest
// value, and a histogram whose bucket 0 holds 0 and bucket k ≥ 1 holds
// [2^(k−1), 2^k) with each bucket's sum, so that any power-of-two cap is
// applied exactly (Capped).
type Dist struct {
	N     uint64  `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sumSq"`
	Max   uint64  `json:"max"`
	// Counts and Sums are per bucket; nil until the first value.
	Counts []uint64  `json:"counts,omitempty"`
	Sums   []float64 `json:"sums,omitempty"`
}

func (d *Dist) add(v uint64) {
	if d.Counts == nil {
		d.Counts, d.Sums = make([]uint64, distBuckets), make([]float64, distBuckets)
	}
	b := bits.Len64(v)
	d.N++
	d.Sum += float64(v)
	d.SumSq += float64(v) * float64(v)
	d.Max = max(d.Max, v)
	d.Counts[b]++
	d.Sums[b] += float64(v)
}

// Mean is the mean value, 0 for none.
func (d Dist) Mean() float64 {
	if d.N == 0 {
		return 0
	}
	return d.Sum / float64(d.N)
}

// Capped returns the sum of min(v, 2^k) over the values, exactly: a
// bucket at or above the cap holds only values ≥ 2^k.
func (d Dist) Capped(k int) float64 {
	if d.Counts == nil {
		return 0
	}
	limit := float64(uint64(1) << k)
	var s float64
	for b := range distBuckets {
		if b <= k {
			s += d.Sums[b]
		} else {
			s += limit * float64(d.Counts[b])
		}
	}
	return s
}

func (d Dist) clone() Dist {
	d.Counts, d.Sums = slices.Clone(d.Counts), slices.Clone(d.Sums)
	return d
}

// SpanSample is one span kept in a reservoir: enough to show it, not the
// span (no attributes beyond these, no events, no content).
type SpanSample struct {
	TraceID   string `json:"traceId"`
	Name      string `json:"name"`
	Tool      string `json:"tool,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Status    string `json:"status,omitempty"`
}

// Bounds on what one Aggregate holds.
const (
	maxTools     = 32 // distinct gen_ai.tool.name values; the rest count as otherTool
	reservoirLen = 8  // failed spans kept per aggregate
	otherTool    = "(other)"
)

// Aggregate is what the receiver keeps of a cohort's spans: counts and
// distributions, never the spans. Its size is bounded whatever the
// traffic (bench/otlp measures it).
type Aggregate struct {
	Spans  uint64 `json:"spans"`
	Failed uint64 `json:"failed"` // spans with an error status or error.type
	// Tasks are invoke_agent spans, Failed those that ended in error.
	Tasks Rate `json:"tasks"`
	// Tools are execute_tool spans, Failed those that ended in error.
	Tools Rate `json:"tools"`
	// Finish are spans that report gen_ai.response.finish_reasons,
	// Failed those cut off ("length" or "max_tokens").
	Finish Rate `json:"finish"`
	// TokensPerTask and ToolCallsPerTask hold one value per task
	// (invoke_agent span): its tokens, its trace's tool calls.
	TokensPerTask    Dist `json:"tokensPerTask"`
	ToolCallsPerTask Dist `json:"toolCallsPerTask"`
	// ByTool are execute_tool spans per gen_ai.tool.name (at most
	// maxTools names, then otherTool).
	ByTool map[string]Rate `json:"byTool,omitempty"`
	// FailedSamples is a uniform sample of the failed spans (reservoir
	// sampling, Vitter's algorithm R, with a deterministic generator).
	FailedSamples []SpanSample `json:"failedSamples,omitempty"`
	// Evals are evaluation scores per gen_ai.evaluation.name (at most
	// maxEvals names; scores of others are dropped and counted in
	// EvalsDropped), each score in thousandths of a point (ScoreScale),
	// negative scores counted as 0.
	Evals        map[string]Dist `json:"evals,omitempty"`
	EvalsDropped uint64          `json:"evalsDropped,omitempty"`
	// Shapes counts tasks per shape: the names of the tools its trace
	// called, in the order they started (Shape). At most maxShapes
	// distinct shapes; the rest count as OtherShape.
	Shapes map[string]uint64 `json:"shapes,omitempty"`
}

// ScoreScale is how many units of an Evals distribution make one point
// of score.
const ScoreScale = 1000

// Bounds on evaluations and shapes.
const (
	maxEvals  = 16
	maxShapes = 64
	// maxShapeCalls bounds the tool calls a shape spells out; a longer
	// trace's shape ends in "…".
	maxShapeCalls = 12
	// OtherShape stands for every shape past the first maxShapes.
	OtherShape = "(other)"
)

// Clone returns a deep copy.
func (a *Aggregate) Clone() Aggregate {
	out := *a
	out.TokensPerTask, out.ToolCallsPerTask = a.TokensPerTask.clone(), a.ToolCallsPerTask.clone()
	out.ByTool = maps.Clone(a.ByTool)
	out.FailedSamples = slices.Clone(a.FailedSamples)
	out.Shapes = maps.Clone(a.Shapes)
	if a.Evals != nil {
		out.Evals = make(map[string]Dist, len(a.Evals))
		for k, d := range a.Evals {
			out.Evals[k] = d.clone()
		}
	}
	return out
}

// task is what the receiver knows of a trace whose invoke_agent span has
// not arrived yet.
type task struct {
	toolCalls uint64
	tokens    uint64
	// calls are the first maxShapeCalls tool calls by start time.
	calls []call
	// captured says the trace's spans are kept (spans, dropped) for its
	// revision's trace samples (samples.go).
	captured bool
	spans    []SpanRecord  // copied from earlier requests
	live     []ptrace.Span // of the request being ingested
	failed   bool          // a captured span failed
	dropped  int
	shaped   string // shape(), once the task is complete
}

// call is one tool call of a task, for its shape.
type call struct {
	start uint64 // unix nanoseconds
	tool  string
}

// Shape spells a task's tool calls in the order they started: "search >
// lookup > summarize"; "(no tools)" for none; "…" at the end when it
// called more than maxShapeCalls tools.
func Shape(tools []string, more bool) string {
	if len(tools) == 0 {
		return "(no tools)"
	}
	s := strings.Join(tools, " > ")
	if more {
		s += " > …"
	}
	return s
}

// maxShapeName bounds a tool's name in a shape, in bytes.
const maxShapeName = 64

func (t *task) add(start uint64, tool string) {
	t.toolCalls++
	if len(tool) > maxShapeName {
		tool = strings.ToValidUTF8(tool[:maxShapeName], "") + "…"
	}
	if len(t.calls) < maxShapeCalls {
		t.calls = append(t.calls, call{start, tool})
		return
	}
	// Keep the earliest maxShapeCalls: replace the latest if this one
	// started before it.
	last := slices.MaxFunc(t.calls, func(a, b call) int { return cmp.Compare(a.start, b.start) })
	if start < last.start {
		i := slices.Index(t.calls, last)
		t.calls[i] = call{start, tool}
	}
}

func (t *task) shape() string {
	if t == nil {
		return Shape(nil, false)
	}
	if t.shaped != "" {
		return t.shaped
	}
	calls := slices.Clone(t.calls)
	slices.SortStableFunc(calls, func(a, b call) int { return cmp.Compare(a.start, b.start) })
	tools := make([]string, len(calls))
	for i, c := range calls {
		tools[i] = c.tool
	}
	t.shaped = Shape(tools, t.toolCalls > uint64(len(calls)))
	return t.shaped
}

// span adds one span that is not an invoke_agent span.
func (a *Aggregate) span(s ptrace.Span, op string) {
	a.Spans++
	bad := failed(s)
	if bad {
		a.Failed++
		a.sample(s)
	}
	if op == OpExecuteTool {
		a.Tools.N++
		name := otherTool
		if v, ok := s.Attributes().Get(attrToolName); ok {
			name = v.AsString()
		}
		if a.ByTool == nil {
			a.ByTool = map[string]Rate{}
		}
		if _, ok := a.ByTool[name]; !ok && len(a.ByTool) >= maxTools {
			name = otherTool
		}
		r := a.ByTool[name]
		r.N++
		if bad {
			a.Tools.Failed++
			r.Failed++
		}
		a.ByTool[name] = r
	}
	a.finish(s.Attributes())
	a.evals(s)
}

// task adds one invoke_agent span and the task its trace made up: t is
// what arrived of the trace before it (nil: nothing).
func (a *Aggregate) task(s ptrace.Span, t *task) {
	a.Spans++
	a.Tasks.N++
	if failed(s) {
		a.Failed++
		a.Tasks.Failed++
		a.sample(s)
	}
	a.finish(s.Attributes())
	var calls, toks uint64
	if t != nil {
		calls, toks = t.toolCalls, t.tokens
	}
	// An agent span that reports usage reports the task's; else the
	// task's tokens are its inference and tool spans'.
	if own, ok := tokens(s.Attributes()); ok {
		toks = own
	}
	a.TokensPerTask.add(toks)
	a.ToolCallsPerTask.add(calls)
	shape := t.shape()
	if a.Shapes == nil {
		a.Shapes = map[string]uint64{}
	}
	if _, ok := a.Shapes[shape]; !ok && len(a.Shapes) >= maxShapes {
		shape = OtherShape
	}
	a.Shapes[shape]++
	a.evals(s)
}

// evals adds the evaluation results a span carries: its events named
// gen_ai.evaluation.result, or the span itself when it is one (some
// tracing bridges send an event as a zero-length span).
func (a *Aggregate) evals(s ptrace.Span) {
	if s.Name() == eventEvaluation {
		a.eval(s.Attributes())
	}
	evs := s.Events()
	for i := range evs.Len() {
		if e := evs.At(i); e.Name() == eventEvaluation {
			a.eval(e.Attributes())
		}
	}
}

func (a *Aggregate) eval(attrs pcommon.Map) {
	name, score, ok := evaluation(attrs)
	if !ok {
		return
	}
	if a.Evals == nil {
		a.Evals = map[string]Dist{}
	}
	d, seen := a.Evals[name]
	if !seen && len(a.Evals) >= maxEvals {
		a.EvalsDropped++
		return
	}
	d.add(uint64(math.Round(max(score, 0) * ScoreScale)))
	a.Evals[name] = d
}

func (a *Aggregate) finish(attrs pcommon.Map) {
	if reported, truncated := finishReasons(attrs); reported {
		a.Finish.N++
		if truncated {
			a.Finish.Failed++
		}
	}
}

func (a *Aggregate) sample(s ptrace.Span) {
	n := a.Failed // this span is the n-th failed one
	i := int(n - 1)
	if len(a.FailedSamples) >= reservoirLen {
		// Keep it with probability reservoirLen/n, in a slot drawn
		// uniformly: a hash of the count stands in for a random number
		// so that the receiver stays deterministic.
		i = int(splitmix(n) % n)
		if i >= reservoirLen {
			return
		}
	}
	ss := SpanSample{TraceID: s.TraceID().String(), Name: s.Name(), Status: s.Status().Message()}
	if v, ok := s.Attributes().Get(attrToolName); ok {
		ss.Tool = v.AsString()
	}
	if v, ok := s.Attributes().Get(attrErrorType); ok {
		ss.ErrorType = v.AsString()
	}
	if i < len(a.FailedSamples) {
		a.FailedSamples[i] = ss
	} else {
		a.FailedSamples = append(a.FailedSamples, ss)
	}
}

// splitmix is SplitMix64's output function.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
