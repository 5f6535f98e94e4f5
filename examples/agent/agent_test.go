package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// runTasks runs n tasks of an agent with faults f, exporting with the
// real SDK to lastgood's receiver over loopback HTTP, and returns the
// revision's aggregate.
func runTasks(t *testing.T, f Faults, n int) otlp.Aggregate {
	t.Helper()
	recv := otlp.New(otlp.Config{})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+otlp.TracesPath))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String(otlp.AttrApp, "agent"), attribute.Int(otlp.AttrRevision, 1))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(20*time.Millisecond), sdktrace.WithMaxQueueSize(1<<16), sdktrace.WithBlocking()))
	cfg := Config{Prompt: "be brief", Tools: []string{"search", "lookup", "summarize"}, Faults: f}
	if cfg.Faults.FailTool == "" {
		cfg.Faults.FailTool = "search"
	}
	if cfg.Faults.LoopCalls == 0 {
		cfg.Faults.LoopCalls = 6
	}
	if cfg.Faults.TokenFactor == 0 {
		cfg.Faults.TokenFactor = 1
	}
	a := &agent{cfg: cfg, tracer: tp.Tracer("test")}
	for i := range n {
		a.run(ctx, fmt.Sprintf("task %d", i))
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	agg, ok := recv.Aggregate(otlp.Key{App: "agent", Revision: 1})
	if !ok {
		t.Fatal("no spans arrived")
	}
	return agg
}

func TestFaultsShowInTheTraces(t *testing.T) {
	const n = 1000
	good := runTasks(t, Faults{}, n)
	if good.Tasks != (otlp.Rate{N: n}) || good.Tools != (otlp.Rate{N: 3 * n}) || good.Finish.Failed != 0 || good.ToolCallsPerTask.Mean() != 3 {
		t.Fatalf("a good agent: tasks %+v tools %+v finish %+v", good.Tasks, good.Tools, good.Finish)
	}
	if len(good.Shapes) != 1 || good.Shapes["search > lookup > summarize"] != n {
		t.Fatalf("a good agent's shapes: %v", good.Shapes)
	}
	score := func(a otlp.Aggregate) float64 { return a.Evals["helpfulness"].Mean() / otlp.ScoreScale }
	if e := good.Evals["helpfulness"]; e.N != n || score(good) < 0.77 || score(good) > 0.83 {
		t.Fatalf("a good agent's helpfulness: %d scores, mean %g", e.N, score(good))
	}
	share := func(r otlp.Rate) float64 { return float64(r.Failed) / float64(r.N) }
	for _, c := range []struct {
		name  string
		f     Faults
		check func(a otlp.Aggregate) bool
	}{
		{"search fails 10%", Faults{ToolFailRate: 0.1}, func(a otlp.Aggregate) bool {
			r := share(a.ByTool["search"])
			return r > 0.07 && r < 0.13 && a.ByTool["lookup"].Failed == 0 && a.Tasks.Failed == 0
		}},
		{"30% of tasks loop", Faults{LoopRate: 0.3}, func(a otlp.Aggregate) bool {
			m := a.ToolCallsPerTask.Mean()
			return m > 3+6*0.25 && m < 3+6*0.35
		}},
		{"20% truncated", Faults{TruncateRate: 0.2}, func(a otlp.Aggregate) bool { r := share(a.Finish); return r > 0.16 && r < 0.24 }},
		{"tokens ×2", Faults{TokenFactor: 2}, func(a otlp.Aggregate) bool {
			return a.TokensPerTask.Mean() > 1.9*good.TokensPerTask.Mean() && a.TokensPerTask.Mean() < 2.1*good.TokensPerTask.Mean()
		}},
		{"5% reordered", Faults{ReorderRate: 0.05}, func(a otlp.Aggregate) bool {
			r := a.Shapes["summarize > lookup > search"]
			return len(a.Shapes) == 2 && r > 30 && r < 70 && r+a.Shapes["search > lookup > summarize"] == n
		}},
		{"helpfulness 0.1 lower", Faults{EvalDrop: 0.1}, func(a otlp.Aggregate) bool { return score(a) > 0.67 && score(a) < 0.73 }},
		{"search always fails", Faults{ToolFailRate: 1}, func(a otlp.Aggregate) bool { return a.ByTool["search"].Failed == n && a.Tasks.Failed == 0 }},
	} {
		if a := runTasks(t, c.f, n); !c.check(a) {
			t.Errorf("%s: tasks %+v tools %+v byTool %v finish %+v calls/task %g tokens/task %g", c.name,
				a.Tasks, a.Tools, a.ByTool, a.Finish, a.ToolCallsPerTask.Mean(), a.TokensPerTask.Mean())
		}
	}
}

func TestSameTaskSameBehaviour(t *testing.T) {
	a, b := runTasks(t, Faults{ToolFailRate: 0.1, LoopRate: 0.2}, 200), runTasks(t, Faults{ToolFailRate: 0.1, LoopRate: 0.2}, 200)
	if a.Tools != b.Tools || a.ToolCallsPerTask.Sum != b.ToolCallsPerTask.Sum || a.TokensPerTask.Sum != b.TokensPerTask.Sum {
		t.Errorf("two runs differ: %+v %+v", a.Tools, b.Tools)
	}
}
