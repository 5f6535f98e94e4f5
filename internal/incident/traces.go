package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// Trace is one trace of the failing revision as the bundle shows it: its
// spans (redacted) and a readable span tree.
type Trace struct {
	TraceID    string            `json:"traceId"`
	Why        []string          `json:"why"`
	Shape      string            `json:"shape"`
	DurationMs float64           `json:"durationMs"`
	Failed     bool              `json:"failed"`
	Spans      []otlp.SpanRecord `json:"spans"`
	Dropped    int               `json:"droppedSpans,omitempty"`
	// Tree is the spans as an indented tree, one span a line with its
	// attributes and events below it.
	Tree string `json:"tree"`
}

// contentKeys are the attributes (and prefixes, ending in ".") that hold
// what a model or a tool was given or said: prompts, messages, tool
// arguments and results, evaluators' explanations. The GenAI conventions'
// current names, their older ones, and OpenInference's.
var contentKeys = []string{
	"gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
	"gen_ai.system_instructions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
	"gen_ai.tool.definitions", "gen_ai.evaluation.explanation", "gen_ai.request.messages",
	"gen_ai.prompt.", "gen_ai.completion.", "gen_ai.content.",
	"input.value", "output.value", "llm.input_messages", "llm.output_messages", "llm.prompts",
}

// contentEvents are events whose attributes are all content.
var contentEvents = []string{"gen_ai.content.", "gen_ai.user.message", "gen_ai.system.message",
	"gen_ai.assistant.message", "gen_ai.tool.message", "gen_ai.choice", "gen_ai.client.inference.operation.details"}

func matches(name string, list []string) bool {
	for _, k := range list {
		if name == k || strings.HasSuffix(k, ".") && strings.HasPrefix(name, k) {
			return true
		}
	}
	return false
}

// redactAttrs hides secrets (the project's one rule set: keys named like
// secrets, and secrets in values) and, unless keep, content.
func redactAttrs(as []otlp.Attr, content, keep bool) []otlp.Attr {
	out := make([]otlp.Attr, len(as))
	for i, a := range as {
		v := a.Value
		switch {
		case redact.Name(a.Key):
			v = redact.Value(v)
		case (content || matches(a.Key, contentKeys)) && !keep:
			v = fmt.Sprintf("(content left out: %d bytes; analysis.traces.keepContent keeps it)", len(v))
		default:
			v = redact.Text(v)
		}
		out[i] = otlp.Attr{Key: redact.Text(a.Key), Value: v}
	}
	return out
}

// traces adds the failing revision's trace samples, redacted.
func (r *Recorder) traces(ctx context.Context, inc *Incident) {
	if r.cfg.Traces == nil || inc.To == 0 {
		return
	}
	samples := r.cfg.Traces(inc.App, inc.To, inc.From)
	if len(samples) == 0 {
		return
	}
	keep := false
	if rev, err := r.cfg.Store.Revision(ctx, inc.App, inc.To); err == nil {
		var m manifest.App
		if json.Unmarshal(rev.Manifest, &m) == nil && m.Analysis.Traces != nil {
			keep = m.Analysis.Traces.KeepContent
		}
	}
	for _, s := range samples {
		t := Trace{TraceID: s.TraceID, Why: s.Why, Shape: redact.Text(s.Shape), DurationMs: ms3(s.Duration), Failed: s.Failed, Dropped: s.Dropped}
		for _, sp := range s.Spans {
			sp.Name, sp.Status = redact.Text(sp.Name), redact.Text(sp.Status)
			sp.Attrs = redactAttrs(sp.Attrs, false, keep)
			evs := make([]otlp.EventRecord, len(sp.Events))
			for i, e := range sp.Events {
				evs[i] = otlp.EventRecord{Name: redact.Text(e.Name), Attrs: redactAttrs(e.Attrs, matches(e.Name, contentEvents), keep)}
			}
			sp.Events = evs
			t.Spans = append(t.Spans, sp)
		}
		t.Tree = tree(t.Spans, t.Dropped)
		inc.Traces = append(inc.Traces, t)
	}
}

func ms3(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tree writes spans (in start order) as an indented tree: a span under
// its parent, a span whose parent was not kept at the top.
func tree(spans []otlp.SpanRecord, dropped int) string {
	kids := map[string][]int{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	var roots []int
	for i, s := range spans {
		if s.ParentID == "" || !ids[s.ParentID] || s.ParentID == s.SpanID {
			roots = append(roots, i)
			continue
		}
		kids[s.ParentID] = append(kids[s.ParentID], i)
	}
	var t0 time.Time
	if len(spans) > 0 {
		t0 = spans[0].Start
	}
	var b strings.Builder
	seen := map[int]bool{}
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] {
			return
		}
		seen[i] = true
		s := spans[i]
		pad := strings.Repeat("  ", depth)
		status := ""
		if s.Error {
			status = "  ERROR"
			if s.Status != "" {
				status += ": " + s.Status
			}
		}
		fmt.Fprintf(&b, "%s%s  +%.3g ms, %.3g ms%s\n", pad, s.Name, ms3(s.Start.Sub(t0)), ms3(s.Duration), status)
		for _, a := range s.Attrs {
			fmt.Fprintf(&b, "%s    %s = %s\n", pad, a.Key, oneLine(a.Value))
		}
		for _, e := range s.Events {
			fmt.Fprintf(&b, "%s    event %s\n", pad, e.Name)
			for _, a := range e.Attrs {
				fmt.Fprintf(&b, "%s      %s = %s\n", pad, a.Key, oneLine(a.Value))
			}
		}
		for _, k := range kids[s.SpanID] {
			walk(k, depth+1)
		}
	}
	for _, i := range roots {
		walk(i, 0)
	}
	if dropped > 0 {
		fmt.Fprintf(&b, "(%d more spans left out)\n", dropped)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`)
}
