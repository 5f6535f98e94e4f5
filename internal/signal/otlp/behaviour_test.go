package otlp

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// taskSpans appends one task: tool spans started at the given offsets
// (sent in the order given), then its invoke_agent span.
func taskSpans(spans ptrace.SpanSlice, id byte, tools []string, starts []int) ptrace.Span {
	tid := pcommon.TraceID([16]byte{id, 2})
	for i, name := range tools {
		s := spans.AppendEmpty()
		s.SetTraceID(tid)
		s.SetName("execute_tool " + name)
		s.Attributes().PutStr(attrToolName, name)
		s.SetStartTimestamp(pcommon.Timestamp(1_000_000 + starts[i]))
	}
	a := spans.AppendEmpty()
	a.SetTraceID(tid)
	a.SetName("invoke_agent helper")
	return a
}

func oneRevision() (ptrace.Traces, ptrace.SpanSlice) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrApp, "a")
	rs.Resource().Attributes().PutInt(AttrRevision, 1)
	return td, rs.ScopeSpans().AppendEmpty().Spans()
}

func TestShapesFollowStartTimesNotArrival(t *testing.T) {
	td, spans := oneRevision()
	taskSpans(spans, 1, []string{"summarize", "search", "lookup"}, []int{30, 10, 20})
	taskSpans(spans, 2, []string{"search", "lookup", "summarize"}, []int{1, 2, 3})
	taskSpans(spans, 3, nil, nil)
	long := make([]string, 15)
	starts := make([]int, 15)
	for i := range long {
		long[i], starts[i] = "search", 15-i // arrive latest first
	}
	long[14] = strings.Repeat("x", 200) // started first, named at length
	taskSpans(spans, 4, long, starts)
	r := New(Config{})
	r.Ingest(td)
	a, _ := r.Aggregate(Key{App: "a", Revision: 1})
	want := "x" + strings.Repeat("x", maxShapeName-1) + "… > " + strings.TrimSuffix(strings.Repeat("search > ", maxShapeCalls-1), " > ") + " > …"
	if a.Shapes["search > lookup > summarize"] != 2 || a.Shapes["(no tools)"] != 1 || a.Shapes[want] != 1 || len(a.Shapes) != 3 {
		t.Errorf("shapes: %v", a.Shapes)
	}
}

func TestShapesAreBounded(t *testing.T) {
	td, spans := oneRevision()
	for i := range maxShapes + 10 {
		taskSpans(spans, byte(i), []string{"t" + string(rune('A'+i))}, []int{0})
	}
	r := New(Config{})
	r.Ingest(td)
	a, _ := r.Aggregate(Key{App: "a", Revision: 1})
	if len(a.Shapes) != maxShapes+1 || a.Shapes[OtherShape] != 10 {
		t.Errorf("%d shapes, %d other", len(a.Shapes), a.Shapes[OtherShape])
	}
}

// Evaluation results are read as span events (the SDKs' form), as spans
// of their own (some tracing bridges'), with the current score name and
// the first draft's; scores without a name or a number are ignored.
func TestEvaluationResults(t *testing.T) {
	td, spans := oneRevision()
	agent := taskSpans(spans, 1, nil, nil)
	ev := agent.Events().AppendEmpty()
	ev.SetName(eventEvaluation)
	ev.Attributes().PutStr(attrEvalName, "helpfulness")
	ev.Attributes().PutDouble(attrEvalScore, 0.75)
	old := agent.Events().AppendEmpty()
	old.SetName(eventEvaluation)
	old.Attributes().PutStr(attrEvalName, "helpfulness")
	old.Attributes().PutStr(attrEvalScoreV0, "0.5")
	label := agent.Events().AppendEmpty() // a label only: no score to compare
	label.SetName(eventEvaluation)
	label.Attributes().PutStr(attrEvalName, "helpfulness")
	label.Attributes().PutStr("gen_ai.evaluation.score.label", "pass")
	other := agent.Events().AppendEmpty()
	other.SetName("gen_ai.choice")
	other.Attributes().PutStr(attrEvalName, "helpfulness")
	other.Attributes().PutDouble(attrEvalScore, 0)
	s := spans.AppendEmpty()
	s.SetName(eventEvaluation)
	s.Attributes().PutStr(attrEvalName, "relevance")
	s.Attributes().PutInt(attrEvalScore, 4)
	neg := spans.AppendEmpty()
	neg.SetName(eventEvaluation)
	neg.Attributes().PutStr(attrEvalName, "relevance")
	neg.Attributes().PutDouble(attrEvalScore, -2)
	r := New(Config{})
	r.Ingest(td)
	a, _ := r.Aggregate(Key{App: "a", Revision: 1})
	h, rel := a.Evals["helpfulness"], a.Evals["relevance"]
	if h.N != 2 || h.Sum != 1250 || rel.N != 2 || rel.Sum != 4000 || rel.Max != 4000 || len(a.Evals) != 2 {
		t.Errorf("evals: %+v", a.Evals)
	}
	c := a.Clone()
	c.Evals["helpfulness"].Counts[0]++
	if a.Evals["helpfulness"].Counts[0] != 0 {
		t.Error("Clone shares the evaluations' buckets")
	}
}

func TestEvaluationNamesAreBounded(t *testing.T) {
	td, spans := oneRevision()
	for i := range maxEvals + 3 {
		s := spans.AppendEmpty()
		s.SetName(eventEvaluation)
		s.Attributes().PutStr(attrEvalName, "e"+string(rune('A'+i)))
		s.Attributes().PutDouble(attrEvalScore, 1)
	}
	r := New(Config{})
	r.Ingest(td)
	a, _ := r.Aggregate(Key{App: "a", Revision: 1})
	if len(a.Evals) != maxEvals || a.EvalsDropped != 3 {
		t.Errorf("%d names, %d dropped", len(a.Evals), a.EvalsDropped)
	}
}

// TestTraceSamples: the slowest, the failed and the shapes the stable
// uses least are kept whole, each once with every reason.
func TestTraceSamples(t *testing.T) {
	r := New(Config{})
	// The stable (revision 1) always calls search then lookup.
	td, spans := oneRevision()
	for i := range 10 {
		taskSpans(spans, byte(i), []string{"search", "lookup"}, []int{1, 2})
	}
	r.Ingest(td)
	// Revision 2: tasks of growing length; task 5 fails; task 7 calls
	// lookup first.
	td = ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrApp, "a")
	rs.Resource().Attributes().PutInt(AttrRevision, 2)
	spans = rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 10 {
		tools := []string{"search", "lookup"}
		if i == 7 {
			tools = []string{"lookup", "search"}
		}
		agent := taskSpans(spans, byte(100+i), tools, []int{1, 2})
		agent.SetSpanID(pcommon.SpanID{byte(i), 1})
		agent.SetStartTimestamp(1_000_000)
		agent.SetEndTimestamp(pcommon.Timestamp(1_000_000 + 1000*(i+1)))
		agent.Attributes().PutStr("gen_ai.input.messages", "my password is hunter2")
		if i == 5 {
			agent.Status().SetCode(ptrace.StatusCodeError)
			agent.Status().SetMessage("every tool failed")
		}
	}
	r.Ingest(td)
	got := r.TraceSamples("a", 2, 1)
	why := map[string][]string{}
	for _, s := range got {
		why[s.Shape+" "+s.Duration.String()] = s.Why
		if len(s.Spans) != 3 || s.Spans[2].Name != "invoke_agent helper" && s.Spans[0].Name != "invoke_agent helper" {
			t.Errorf("trace %s: spans %+v", s.TraceID, s.Spans)
		}
	}
	want := map[string][]string{
		"search > lookup 10µs": {"slowest"},
		"search > lookup 9µs":  {"slowest"},
		"lookup > search 8µs":  {"slowest", "shape"},
		"search > lookup 6µs":  {"failed"},
		"search > lookup 1µs":  {"shape"},
	}
	if !reflect.DeepEqual(why, want) {
		t.Errorf("samples: %v", why)
	}
	r.Forget("a", []int{2})
	if got := r.TraceSamples("a", 2, 1); got != nil {
		t.Errorf("after Forget: %d samples", len(got))
	}
}

func TestCapturedTracesAreBounded(t *testing.T) {
	r := New(Config{})
	td, spans := oneRevision()
	// Tool spans of more open traces than are captured, no agent spans.
	for i := range maxCaptured + 50 {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 9})
		s.SetName("execute_tool search")
	}
	r.Ingest(td)
	if r.capturing != maxCaptured {
		t.Errorf("capturing %d", r.capturing)
	}
	r.Forget("a", nil)
	if r.capturing != 0 || len(r.pending) != 0 {
		t.Errorf("after Forget: capturing %d, pending %d", r.capturing, len(r.pending))
	}
}
