package analysis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// shapedTasks sends n tasks of a revision: task i calls the tools of
// shape(i) in order and is scored score(i) for helpfulness (negative: no
// evaluation).
func shapedTasks(r *otlp.Receiver, rev, n int, seq *int, shape func(i int) []string, score func(i int) float64) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(otlp.AttrApp, "agent")
	rs.Resource().Attributes().PutInt(otlp.AttrRevision, int64(rev))
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for range n {
		*seq++
		id := pcommon.TraceID([16]byte{byte(*seq), byte(*seq >> 8), byte(*seq >> 16), byte(rev)})
		for k, tool := range shape(*seq) {
			s := spans.AppendEmpty()
			s.SetTraceID(id)
			s.SetName("execute_tool " + tool)
			s.Attributes().PutStr("gen_ai.tool.name", tool)
			s.SetStartTimestamp(pcommon.Timestamp(k + 1))
		}
		s := spans.AppendEmpty()
		s.SetTraceID(id)
		s.SetName("invoke_agent helper")
		if v := score(*seq); v >= 0 {
			e := s.Events().AppendEmpty()
			e.SetName("gen_ai.evaluation.result")
			e.Attributes().PutStr("gen_ai.evaluation.name", "helpfulness")
			e.Attributes().PutDouble("gen_ai.evaluation.score.value", v)
		}
	}
	r.Ingest(td)
}

// judgeUntil runs a check over looks of 20 stable and 20 canary tasks
// until it concludes.
func judgeUntil(t *testing.T, cmp *manifest.Compare, looks int, stable, canary func(recv *otlp.Receiver, rev int, seq *int)) Result {
	t.Helper()
	recv := otlp.New(otlp.Config{})
	src := Sources{Traces: func(app string, rev int) (otlp.Aggregate, bool) {
		return recv.Aggregate(otlp.Key{App: app, Revision: rev})
	}}
	ch, err := compile(Target{App: "agent", Stable: 1, Canary: 2}, src, manifest.Check{Name: "c", Compare: cmp}, judge.DefaultAlpha/5, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	var res Result
	for look := range looks {
		stable(recv, 1, &seq)
		canary(recv, 2, &seq)
		res = ch.look(context.Background(), time.Unix(int64(look), 0))
		if res.Verdict != judge.Inconclusive {
			break
		}
	}
	return res
}

var usual = []string{"search", "lookup", "summarize"}

func always(tools ...string) func(int) []string { return func(int) []string { return tools } }

// every k-th task calls other instead of usual.
func sometimes(k int, other ...string) func(int) []string {
	return func(i int) []string {
		if i%k == 0 {
			return other
		}
		return usual
	}
}

func noScore(int) float64 { return -1 }

func TestTraceShape(t *testing.T) {
	for _, c := range []struct {
		name   string
		canary func(int) []string
		tol    string
		want   judge.Verdict
		words  string
	}{
		{"A/A", always(usual...), "", judge.Pass, "traceShape: every shape's share of tasks is within 10 points"},
		{"another order", always("lookup", "search", "summarize"), "", judge.Fail, `traceShape: tasks of shape "search > lookup > summarize" are 0% (0/`},
		{"5% reordered within 10 points", sometimes(20, "summarize", "lookup", "search"), "", judge.Pass, "within 10 points"},
		{"25% reordered", sometimes(4, "summarize", "lookup", "search"), "", judge.Fail, "a change of more than 10 points"},
		{"25% reordered within 30 points", sometimes(4, "summarize", "lookup", "search"), "0.3", judge.Pass, "within 30 points"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The stable has two shapes: most tasks the usual way, one in ten
			// without lookup.
			stable := sometimes(10, "search", "summarize")
			canary := func(i int) []string {
				if i%10 == 0 {
					return stable(i)
				}
				return c.canary(i)
			}
			res := judgeUntil(t, &manifest.Compare{Metric: "traceShape", MaxIncrease: c.tol}, 400,
				func(r *otlp.Receiver, rev int, seq *int) { shapedTasks(r, rev, 20, seq, stable, noScore) },
				func(r *otlp.Receiver, rev int, seq *int) { shapedTasks(r, rev, 20, seq, canary, noScore) })
			if res.Verdict != c.want || !strings.Contains(res.Reason, c.words) || res.Evidence.Metric != "traceShape" {
				t.Errorf("%s %q", res.Verdict, res.Reason)
			}
		})
	}
}

func TestTraceShapeWithoutSpansSaysWhy(t *testing.T) {
	res := judgeUntil(t, &manifest.Compare{Metric: "traceShape"}, 3,
		func(r *otlp.Receiver, rev int, seq *int) { shapedTasks(r, rev, 20, seq, always(usual...), noScore) },
		func(*otlp.Receiver, int, *int) {})
	if res.Verdict != judge.Inconclusive || res.Data || res.Reason != NoSpans(2) {
		t.Errorf("%s data %v %q", res.Verdict, res.Data, res.Reason)
	}
}

func TestEvalScore(t *testing.T) {
	// Scores spread over [0.6, 1.0], mean 0.8.
	score := func(drop float64) func(int) float64 {
		return func(i int) float64 { return 0.6 + 0.4*float64(i*7919%1000)/1000 - drop }
	}
	for _, c := range []struct {
		name, maxDecrease string
		drop              float64
		want              judge.Verdict
		words             string
	}{
		{"0.15 lower", "0.05", 0.15, judge.Fail, "points per evaluation (580 evaluations) falls below stable's 0.804 points per evaluation (580 evaluations) by more than 0.05"},
		{"A/A", "0.05", 0, judge.Pass, "is within 0.05 of stable's 0.804 points per evaluation"},
		{"0.1 lower against 5%", "5%", 0.1, judge.Fail, "falls below stable's 0.804 points per evaluation (1320 evaluations) by more than 5%"},
		{"A/A within 5%", "5%", 0, judge.Pass, "is within 5% of stable's"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := judgeUntil(t, &manifest.Compare{Metric: "evalScore", Name: "helpfulness", MaxDecrease: c.maxDecrease}, 400,
				func(r *otlp.Receiver, rev int, seq *int) { shapedTasks(r, rev, 20, seq, always(usual...), score(0)) },
				func(r *otlp.Receiver, rev int, seq *int) {
					shapedTasks(r, rev, 20, seq, always(usual...), score(c.drop))
				})
			if res.Verdict != c.want || !strings.Contains(res.Reason, c.words) {
				t.Errorf("%s %q", res.Verdict, res.Reason)
			}
		})
	}
}

func TestEvalScoreOfAnotherNameHasNoData(t *testing.T) {
	res := judgeUntil(t, &manifest.Compare{Metric: "evalScore", Name: "relevance", MaxDecrease: "0.1"}, 5,
		func(r *otlp.Receiver, rev int, seq *int) {
			shapedTasks(r, rev, 20, seq, always(usual...), func(int) float64 { return 1 })
		},
		func(r *otlp.Receiver, rev int, seq *int) {
			shapedTasks(r, rev, 20, seq, always(usual...), func(int) float64 { return 1 })
		})
	if res.Verdict != judge.Inconclusive || res.Data || !strings.Contains(res.Reason, fmt.Sprint("revision 2")) {
		t.Errorf("%s data %v %q", res.Verdict, res.Data, res.Reason)
	}
}
