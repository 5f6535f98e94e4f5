package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// agentTraces builds tasks of an agent in app's revision rev: each task
// is an invoke_agent span with calls execute_tool children, of which the
// first failed ones fail, and truncated tasks end with finish reason
// "length".
func agentTraces(app string, rev any, tasks, calls, failedCalls, truncated int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrApp, app)
	switch v := rev.(type) {
	case int:
		rs.Resource().Attributes().PutInt(AttrRevision, int64(v))
	case string:
		rs.Resource().Attributes().PutStr(AttrRevision, v)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for t := range tasks {
		id := pcommon.TraceID([16]byte{byte(t), byte(t >> 8), 1})
		agent := spans.AppendEmpty() // first: the receiver must not depend on order
		agent.SetTraceID(id)
		agent.SetName("invoke_agent helper")
		agent.Attributes().PutStr(attrOperation, OpInvokeAgent)
		agent.Attributes().PutInt(attrInputTokens, 100)
		agent.Attributes().PutInt(attrOutputTokens, 20)
		fr := agent.Attributes().PutEmptySlice(attrFinishReasons)
		if t < truncated {
			fr.AppendEmpty().SetStr("length")
		} else {
			fr.AppendEmpty().SetStr("stop")
		}
		for c := range calls {
			s := spans.AppendEmpty()
			s.SetTraceID(id)
			s.SetName("execute_tool search")
			s.Attributes().PutStr(attrToolName, "search")
			if t == 0 && c < failedCalls {
				s.Status().SetCode(ptrace.StatusCodeError)
				s.Attributes().PutStr(attrErrorType, "timeout")
			}
		}
	}
	return td
}

func post(t *testing.T, url, ctype, encoding string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+TracesPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestReceiverAggregatesProtobufJSONAndGzip(t *testing.T) {
	r := New(Config{Known: func(app string, rev int) bool { return app == "agent" && rev <= 2 }})
	srv := httptest.NewServer(r)
	defer srv.Close()

	pb, _ := ptraceotlp.NewExportRequestFromTraces(agentTraces("agent", 1, 10, 3, 2, 1)).MarshalProto()
	js, _ := ptraceotlp.NewExportRequestFromTraces(agentTraces("agent", "1", 10, 3, 2, 1)).MarshalJSON()
	for _, c := range []struct {
		ctype, enc string
		body       []byte
	}{{protobufType, "", pb}, {jsonType, "", js}, {protobufType + "; charset=binary", "gzip", gzipped(pb)}} {
		resp, body := post(t, srv.URL, c.ctype, c.enc, c.body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", c.ctype, c.enc, resp.StatusCode, body)
		}
	}
	a, ok := r.Aggregate(Key{App: "agent", Revision: 1})
	if !ok {
		t.Fatal("no aggregate for agent revision 1")
	}
	// Three requests of 10 tasks, 30 tool calls (2 failed), 1 truncated.
	if a.Tasks != (Rate{30, 0}) || a.Tools != (Rate{90, 6}) || a.Finish != (Rate{30, 3}) || a.Spans != 120 || a.Failed != 6 {
		t.Errorf("aggregate = tasks %+v tools %+v finish %+v spans %d failed %d", a.Tasks, a.Tools, a.Finish, a.Spans, a.Failed)
	}
	if a.ToolCallsPerTask.N != 30 || a.ToolCallsPerTask.Mean() != 3 || a.TokensPerTask.Mean() != 120 {
		t.Errorf("per task: calls %+v tokens %+v", a.ToolCallsPerTask, a.TokensPerTask)
	}
	if a.ByTool["search"] != (Rate{90, 6}) || len(a.FailedSamples) != 6 || a.FailedSamples[0].ErrorType != "timeout" {
		t.Errorf("byTool %v samples %+v", a.ByTool, a.FailedSamples)
	}
}

func TestReceiverDropsUnknownAndUnlabelledSpans(t *testing.T) {
	r := New(Config{Known: func(app string, rev int) bool { return app == "agent" && rev == 1 }})
	srv := httptest.NewServer(r)
	defer srv.Close()
	td := agentTraces("agent", 7, 2, 1, 0, 0)                                                 // unknown revision: 4 spans
	agentTraces("other", 1, 1, 1, 0, 0).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())   // unknown app: 2
	agentTraces("agent", nil, 1, 0, 0, 0).ResourceSpans().MoveAndAppendTo(td.ResourceSpans()) // no revision: 1
	agentTraces("agent", 1, 1, 0, 0, 0).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())   // kept: 1
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	resp, out := post(t, srv.URL, protobufType, "", []byte(body))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, out)
	}
	er := ptraceotlp.NewExportResponse()
	if err := er.UnmarshalProto([]byte(out)); err != nil {
		t.Fatal(err)
	}
	if got := er.PartialSuccess().RejectedSpans(); got != 7 {
		t.Errorf("rejected spans = %d, want 7", got)
	}
	st := r.Stats()
	if st.Unknown != 6 || st.Unlabelled != 1 || st.Spans != 1 {
		t.Errorf("stats = %+v", st)
	}
	if _, ok := r.Aggregate(Key{App: "agent", Revision: 7}); ok {
		t.Error("an unknown revision got an aggregate")
	}
}

func TestReceiverRefusesBadRequests(t *testing.T) {
	r := New(Config{MaxBody: 2 << 10})
	srv := httptest.NewServer(r)
	defer srv.Close()
	good, _ := ptraceotlp.NewExportRequestFromTraces(agentTraces("agent", 1, 1, 1, 0, 0)).MarshalProto()
	big := agentTraces("agent", 1, 40, 3, 0, 0)
	bigPB, _ := ptraceotlp.NewExportRequestFromTraces(big).MarshalProto()
	bomb := gzipped(make([]byte, 1<<20)) // small compressed, 1 MiB inflated
	for _, c := range []struct {
		name, ctype, enc string
		body             []byte
		status           int
		reason           string
	}{
		{"truncated protobuf", protobufType, "", good[:len(good)-3], 400, "malformed application/x-protobuf"},
		{"not JSON", jsonType, "", []byte(`{"resourceSpans": [`), 400, "malformed application/json"},
		{"bad gzip", protobufType, "gzip", []byte("not gzip"), 400, "gzip body"},
		{"wrong type", "text/plain", "", good, 415, `content type "text/plain"`},
		{"wrong encoding", protobufType, "br", good, 415, `content encoding "br"`},
		{"too big", protobufType, "", bigPB, 413, "over the limit"},
		{"gzip bomb", protobufType, "gzip", bomb, 413, "once decompressed"},
	} {
		resp, body := post(t, srv.URL, c.ctype, c.enc, c.body)
		if resp.StatusCode != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, resp.StatusCode, body, c.status, c.reason)
		}
	}
	resp, err := http.Get(srv.URL + TracesPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	if st := r.Stats(); st.Spans != 0 || st.Rejected != 8 {
		t.Errorf("after refusals: %+v", st)
	}
	// It keeps serving.
	if resp, body := post(t, srv.URL, protobufType, "", good); resp.StatusCode != 200 {
		t.Errorf("good request after refusals: %d %s", resp.StatusCode, body)
	}
}

// The real OpenTelemetry Go SDK, exporting over OTLP/HTTP as an agent
// under lastgood would, lands in the aggregates.
func TestReceiverTakesTheGoSDKsExports(t *testing.T) {
	r := New(Config{})
	srv := httptest.NewServer(r)
	defer srv.Close()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+TracesPath), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String(AttrApp, "agent"), attribute.String(AttrRevision, "3"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(10*time.Millisecond)), sdktrace.WithResource(res))
	tr := tp.Tracer("test")
	for i := range 5 {
		tctx, task := tr.Start(ctx, "invoke_agent helper")
		_, tool := tr.Start(tctx, "execute_tool lookup")
		tool.SetAttributes(attribute.String(attrToolName, "lookup"))
		if i == 0 {
			tool.SetStatus(codes.Error, "lookup failed")
		}
		tool.End()
		task.SetAttributes(attribute.Int(attrInputTokens, 10), attribute.Int(attrOutputTokens, 5))
		task.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a, ok := r.Aggregate(Key{App: "agent", Revision: 3})
	if !ok || a.Tasks.N != 5 || a.Tools != (Rate{5, 1}) || a.TokensPerTask.Mean() != 15 || a.ToolCallsPerTask.Mean() != 1 {
		t.Fatalf("aggregate after the SDK's export: %v %+v", ok, a)
	}
	if a.FailedSamples[0].Status != "lookup failed" {
		t.Errorf("sample %+v", a.FailedSamples[0])
	}
}

func TestCohortsSplitARevision(t *testing.T) {
	r := New(Config{Cohorts: []string{"feature_flag.variant"}})
	td := agentTraces("agent", 1, 4, 1, 0, 0)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		if i%4 < 2 { // tasks 0 and 1 of each pair of spans
			spans.At(i).Attributes().PutStr("feature_flag.variant", "on")
		}
	}
	r.Ingest(td)
	all, _ := r.Aggregate(Key{App: "agent", Revision: 1})
	on, ok := r.Aggregate(Key{App: "agent", Revision: 1, Attribute: "feature_flag.variant", Value: "on"})
	if !ok || all.Spans != 8 || on.Spans != 4 || on.Tasks.N != 2 {
		t.Fatalf("all %+v on %+v", all, on)
	}
}

func TestPendingTasksAreBounded(t *testing.T) {
	r := New(Config{})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrApp, "agent")
	rs.Resource().Attributes().PutInt(AttrRevision, 1)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range maxPending + 10 { // tool calls whose tasks never end
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID([16]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
		s.SetName("execute_tool x")
	}
	r.Ingest(td)
	if st := r.Stats(); st.Forgotten != 10 || len(r.pending) != maxPending {
		t.Errorf("forgotten %d, pending %d", st.Forgotten, len(r.pending))
	}
	r.Forget("agent", nil)
	if _, ok := r.Aggregate(Key{App: "agent", Revision: 1}); ok || len(r.pending) != 0 {
		t.Error("Forget kept the app's aggregates")
	}
}

func TestDistCapped(t *testing.T) {
	var d Dist
	for _, v := range []uint64{0, 1, 3, 4, 9, 100} {
		d.add(v)
	}
	// cap 8: 0+1+3+4+8+8
	if got := d.Capped(3); got != 24 {
		t.Errorf("Capped(3) = %g, want 24", got)
	}
	if !reflect.DeepEqual(d.clone(), d) {
		t.Error("clone differs")
	}
}
