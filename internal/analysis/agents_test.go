package analysis

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// toolSpans sends n execute_tool spans of a revision to the receiver,
// every k-th of them failed (k = 0: none).
func toolSpans(r *otlp.Receiver, rev, n, k int, seq *int) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(otlp.AttrApp, "agent")
	rs.Resource().Attributes().PutInt(otlp.AttrRevision, int64(rev))
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		*seq++
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID([16]byte{byte(*seq), byte(*seq >> 8), byte(*seq >> 16), byte(rev)}))
		s.SetName("execute_tool search")
		if k > 0 && i%k == 0 {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	r.Ingest(td)
}

func traceRunner(t *testing.T, recv *otlp.Receiver, metric string) checker {
	t.Helper()
	c := manifest.Check{Name: "tools", Compare: &manifest.Compare{Metric: metric, MaxIncrease: "0.02"}}
	src := Sources{Traces: func(app string, rev int) (otlp.Aggregate, bool) {
		return recv.Aggregate(otlp.Key{App: app, Revision: rev})
	}}
	ch, err := compile(Target{App: "agent", Stable: 1, Canary: 2}, src, c, judge.DefaultAlpha, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestToolErrorRateFailsAFailingToolAndPassesAnEqualOne(t *testing.T) {
	for _, c := range []struct {
		name      string
		canaryK   int // every k-th canary tool call fails
		want      judge.Verdict
		wantWords string
	}{
		{"10% failures against 1%", 10, judge.Fail, "toolErrorRate (execute_tool spans that failed): canary error rate"},
		{"A/A at 1%", 100, judge.Pass, "is within"},
	} {
		recv := otlp.New(otlp.Config{})
		ch := traceRunner(t, recv, "toolErrorRate")
		seq := 0
		var res Result
		at := time.Unix(0, 0)
		for look := range 400 {
			toolSpans(recv, 1, 200, 100, &seq)
			toolSpans(recv, 2, 200, c.canaryK, &seq)
			res = ch.look(context.Background(), at.Add(time.Duration(look)*time.Second))
			if res.Verdict != judge.Inconclusive {
				break
			}
		}
		if res.Verdict != c.want || !strings.Contains(res.Reason, c.wantWords) || !res.Data || res.Evidence.Metric != "toolErrorRate" {
			t.Errorf("%s: %s %q data %v metric %s", c.name, res.Verdict, res.Reason, res.Data, res.Evidence.Metric)
		}
	}
}

func TestTraceCheckWithoutSpansSaysWhy(t *testing.T) {
	recv := otlp.New(otlp.Config{})
	ch := traceRunner(t, recv, "taskErrorRate")
	seq := 0
	toolSpans(recv, 1, 10, 0, &seq) // tool spans, but no invoke_agent span from either
	res := ch.look(context.Background(), time.Unix(1, 0))
	want := "no spans from revision 2: is the OpenTelemetry SDK exporting to $OTEL_EXPORTER_OTLP_ENDPOINT?"
	if res.Verdict != judge.Inconclusive || res.Data || res.Reason != want {
		t.Errorf("got %s %q data %v", res.Verdict, res.Reason, res.Data)
	}
}

func TestUnknownCompareMetricListsTheAgentMetrics(t *testing.T) {
	an := &manifest.Analysis{Checks: []manifest.Check{{Name: "x", Compare: &manifest.Compare{Metric: "toolErrorRatio", MaxIncrease: "0.01"}}}}
	ps := Validate(an)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "toolErrorRatio") {
		t.Fatalf("problems %v", ps)
	}
}

// tasks sends n invoke_agent spans of a revision, each with tokens(i)
// tokens and calls(i) execute_tool spans in its trace.
func tasks(r *otlp.Receiver, rev, n int, seq *int, tokens, calls func(i int) int) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(otlp.AttrApp, "agent")
	rs.Resource().Attributes().PutInt(otlp.AttrRevision, int64(rev))
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for range n {
		*seq++
		id := pcommon.TraceID([16]byte{byte(*seq), byte(*seq >> 8), byte(*seq >> 16), byte(rev)})
		for range calls(*seq) {
			s := spans.AppendEmpty()
			s.SetTraceID(id)
			s.SetName("execute_tool search")
		}
		s := spans.AppendEmpty()
		s.SetTraceID(id)
		s.SetName("invoke_agent helper")
		s.Attributes().PutInt("gen_ai.usage.input_tokens", int64(tokens(*seq)))
	}
	r.Ingest(td)
}

func TestPerTaskMetrics(t *testing.T) {
	base := func(i int) int { return 100 + i%50 }
	three := func(int) int { return 3 }
	for _, c := range []struct {
		name, metric, maxIncrease string
		tokens, calls             func(int) int
		want                      judge.Verdict
	}{
		{"tokens ×2", "tokensPerTask", "30", func(i int) int { return 2 * base(i) }, three, judge.Fail},
		{"tokens A/A", "tokensPerTask", "30", base, three, judge.Pass},
		{"a loop in 30% of tasks", "toolCallsPerTask", "1", base, func(i int) int {
			if i%10 < 3 {
				return 9
			}
			return 3
		}, judge.Fail},
		{"calls A/A", "toolCallsPerTask", "1", base, three, judge.Pass},
		{"tokens ×2 against 20%", "tokensPerTask", "20%", func(i int) int { return 2 * base(i) }, three, judge.Fail},
		{"tokens +5% within 20%", "tokensPerTask", "20%", func(i int) int { return base(i) * 105 / 100 }, three, judge.Pass},
		{"calls 3 → 5 against 20%", "toolCallsPerTask", "20%", base, func(int) int { return 5 }, judge.Fail},
	} {
		recv := otlp.New(otlp.Config{})
		mc := manifest.Check{Name: "cost", Compare: &manifest.Compare{Metric: c.metric, MaxIncrease: c.maxIncrease}}
		src := Sources{Traces: func(app string, rev int) (otlp.Aggregate, bool) {
			return recv.Aggregate(otlp.Key{App: app, Revision: rev})
		}}
		ch, err := compile(Target{App: "agent", Stable: 1, Canary: 2}, src, mc, judge.DefaultAlpha, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		seq := 0
		var res Result
		for look := range 300 {
			tasks(recv, 1, 20, &seq, base, three)
			tasks(recv, 2, 20, &seq, c.tokens, c.calls)
			res = ch.look(context.Background(), time.Unix(int64(look), 0))
			if res.Verdict != judge.Inconclusive {
				break
			}
		}
		if res.Verdict != c.want || !strings.HasPrefix(res.Reason, c.metric+": canary") {
			t.Errorf("%s: %s %q", c.name, res.Verdict, res.Reason)
		}
	}
}
