// Command agent is lastgood's example AI agent: deterministic, with no
// model and no network beyond loopback. It answers tasks (GET /task?q=…)
// by calling a few fake tools, and traces each task with the real
// OpenTelemetry Go SDK using the GenAI semantic-convention names
// (invoke_agent, execute_tool, gen_ai.tool.name, gen_ai.usage.*,
// gen_ai.response.finish_reasons), exported over OTLP/HTTP to
// $OTEL_EXPORTER_OTLP_ENDPOINT — lastgood's receiver when it runs under
// lastgood.
//
// Its behaviour is its config artifact (--config FILE, JSON), so a
// release of the agent can be configuration only:
//
//	{"prompt": "be brief", "tools": ["search", "lookup", "summarize"],
//	 "faults": {"failTool": "search", "toolFailRate": 0.1,
//	            "loopRate": 0.3, "loopCalls": 6,
//	            "truncateRate": 0.2, "tokenFactor": 2,
//	            "reorderRate": 0.05, "evalDrop": 0.1}}
//
// faults make it misbehave on demand: a tool that fails a share of its
// calls, tasks that loop over a tool, answers cut off (finish reason
// "length"), token use multiplied, tools called in reverse order, lower
// helpfulness scores (each answer is scored and the score sent as a
// gen_ai.evaluation.result event). The order of "tools" is the order of
// the steps. Every decision is a hash of the task
// and the config, so the same task under the same config behaves the
// same way every time.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config is the agent's config artifact.
type Config struct {
	Prompt string   `json:"prompt"`
	Tools  []string `json:"tools"`
	Faults Faults   `json:"faults"`
}

// Faults are the misbehaviours the agent shows on demand.
type Faults struct {
	FailTool     string  `json:"failTool"`     // the tool that fails (default: the first)
	ToolFailRate float64 `json:"toolFailRate"` // share of its calls that fail
	LoopRate     float64 `json:"loopRate"`     // share of tasks that loop
	LoopCalls    int     `json:"loopCalls"`    // extra calls of a looping task (default 6)
	TruncateRate float64 `json:"truncateRate"` // share of answers cut off
	TokenFactor  float64 `json:"tokenFactor"`  // token use multiplied (default 1)
	ReorderRate  float64 `json:"reorderRate"`  // share of tasks that call the tools in reverse order
	EvalDrop     float64 `json:"evalDrop"`     // taken off every helpfulness score
}

func load(path string) (Config, error) {
	c := Config{Tools: []string{"search", "lookup", "summarize"}}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, err
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	f := &c.Faults
	for _, r := range []float64{f.ToolFailRate, f.LoopRate, f.TruncateRate, f.ReorderRate, f.EvalDrop} {
		if r < 0 || r > 1 {
			return c, fmt.Errorf("%s: rates are between 0 and 1, got %g", path, r)
		}
	}
	if len(c.Tools) == 0 {
		return c, fmt.Errorf("%s: tools: at least one", path)
	}
	if f.FailTool == "" {
		f.FailTool = c.Tools[0]
	}
	if f.LoopCalls == 0 {
		f.LoopCalls = 6
	}
	if f.TokenFactor == 0 {
		f.TokenFactor = 1
	}
	return c, nil
}

// agent answers tasks.
type agent struct {
	cfg    Config
	tracer trace.Tracer
}

// chance is a deterministic draw in [0, 1) for one decision about a task.
func chance(parts ...string) float64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

// result is one task's outcome.
type result struct {
	Answer    string   `json:"answer"`
	ToolCalls int      `json:"toolCalls"`
	Failed    []string `json:"failedTools,omitempty"`
	Finish    string   `json:"finishReason"`
	Tokens    int      `json:"tokens"`
	Score     float64  `json:"helpfulness"`
}

func (a *agent) run(ctx context.Context, q string) (result, error) {
	f := a.cfg.Faults
	ctx, span := a.tracer.Start(ctx, "invoke_agent helper", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("gen_ai.operation.name", "invoke_agent"),
			attribute.String("gen_ai.agent.name", "helper"), attribute.String("gen_ai.request.model", "fake-1")))
	defer span.End()

	calls := append([]string(nil), a.cfg.Tools...)
	if chance("reorder", q) < f.ReorderRate {
		slices.Reverse(calls)
	}
	if chance("loop", q) < f.LoopRate {
		for i := range f.LoopCalls {
			calls = append(calls, a.cfg.Tools[i%len(a.cfg.Tools)])
		}
	}
	var res result
	var notes []string
	for i, tool := range calls {
		out, err := a.tool(ctx, tool, q, i)
		res.ToolCalls++
		if err != nil {
			res.Failed = append(res.Failed, tool)
			continue // the agent carries on without that tool
		}
		notes = append(notes, out)
	}
	input := 40 + 4*len(strings.Fields(a.cfg.Prompt+" "+q)) + 25*res.ToolCalls
	output := 10 + 5*len(notes)
	input, output = int(float64(input)*f.TokenFactor), int(float64(output)*f.TokenFactor)
	res.Tokens = input + output
	res.Finish = "stop"
	res.Answer = strings.Join(notes, "; ")
	if chance("truncate", q) < f.TruncateRate {
		res.Finish = "length"
		res.Answer = res.Answer[:len(res.Answer)/2]
	}
	span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", input), attribute.Int("gen_ai.usage.output_tokens", output),
		attribute.StringSlice("gen_ai.response.finish_reasons", []string{res.Finish}))
	// A judge scores every answer; a cut-off answer scores lower. The
	// result goes out as the conventions' gen_ai.evaluation.result event
	// on the agent's span.
	res.Score = 0.6 + 0.4*chance("eval", q) - f.EvalDrop
	if res.Finish == "length" {
		res.Score -= 0.3
	}
	res.Score = min(max(res.Score, 0), 1)
	span.AddEvent("gen_ai.evaluation.result", trace.WithAttributes(attribute.String("gen_ai.evaluation.name", "helpfulness"),
		attribute.Float64("gen_ai.evaluation.score.value", res.Score)))
	if len(notes) == 0 {
		err := errors.New("every tool failed")
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", "tools_failed"))
		return res, err
	}
	return res, nil
}

// tool is one fake tool call: it computes its answer from the task.
func (a *agent) tool(ctx context.Context, name, q string, i int) (string, error) {
	_, span := a.tracer.Start(ctx, "execute_tool "+name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", name),
			attribute.String("gen_ai.tool.type", "function")))
	defer span.End()
	f := a.cfg.Faults
	if name == f.FailTool && chance("fail", name, q, fmt.Sprint(i)) < f.ToolFailRate {
		err := fmt.Errorf("%s: upstream timed out", name)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", "timeout"))
		return "", err
	}
	return fmt.Sprintf("%s(%s)=%04x", name, q, uint16(chance(name, q)*65535)), nil
}

func (a *agent) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" {
		http.Error(w, "want /task?q=…", http.StatusBadRequest)
		return
	}
	res, err := a.run(r.Context(), q)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
	}
	json.NewEncoder(w).Encode(res)
}

func main() {
	configPath := flag.String("config", "", "the agent's config `FILE` (JSON)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("agent: ")
	cfg, err := load(*configPath)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// otlptracehttp reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other
	// OTEL_EXPORTER_OTLP_* variables); the resource reads
	// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(200*time.Millisecond), sdktrace.WithMaxQueueSize(1<<14)))
	a := &agent{cfg: cfg, tracer: tp.Tracer("lastgood/examples/agent")}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /task", a.handle)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Printf("listening on %s (tools %v)", ln.Addr(), cfg.Tools)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	// Spans still queued go out before the process ends.
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(flush); err != nil {
		log.Printf("flushing traces: %v", err)
	}
}
