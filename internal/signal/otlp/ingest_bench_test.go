package otlp

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// benchReq is one export of 128 tasks of an agent, 512 spans.
func benchReq() []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrApp, "helper")
	rs.Resource().Attributes().PutStr(AttrRevision, "2")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	t0 := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	for i := range 128 {
		id := pcommon.TraceID{byte(i), byte(i >> 8), 1}
		for c, tool := range []string{"search", "lookup", "summarize"} {
			s := spans.AppendEmpty()
			s.SetTraceID(id)
			s.SetName("execute_tool " + tool)
			s.SetStartTimestamp(t0 + pcommon.Timestamp(c))
			s.Attributes().PutStr("gen_ai.operation.name", "execute_tool")
			s.Attributes().PutStr("gen_ai.tool.name", tool)
			s.Attributes().PutStr("gen_ai.tool.type", "function")
		}
		s := spans.AppendEmpty()
		s.SetTraceID(id)
		s.SetName("invoke_agent helper")
		s.Attributes().PutStr("gen_ai.operation.name", "invoke_agent")
		s.Attributes().PutInt("gen_ai.usage.input_tokens", 150)
		s.Attributes().PutInt("gen_ai.usage.output_tokens", 25)
		s.Attributes().PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr("stop")
		e := s.Events().AppendEmpty()
		e.SetName("gen_ai.evaluation.result")
		e.Attributes().PutStr("gen_ai.evaluation.name", "helpfulness")
		e.Attributes().PutDouble("gen_ai.evaluation.score.value", 0.7)
	}
	b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	return b
}

// BenchmarkIngest is one export of 512 spans decoded and aggregated
// (bench/otlp reports spans per second; this is for profiles).
func BenchmarkIngest(b *testing.B) {
	body := benchReq()
	r := New(Config{})
	for b.Loop() {
		req := ptraceotlp.NewExportRequest()
		req.UnmarshalProto(body)
		r.Ingest(req.Traces())
	}
}

// BenchmarkUnmarshalFloor is the decoding alone.
func BenchmarkUnmarshalFloor(b *testing.B) {
	body := benchReq()
	for b.Loop() {
		req := ptraceotlp.NewExportRequest()
		req.UnmarshalProto(body)
	}
}
