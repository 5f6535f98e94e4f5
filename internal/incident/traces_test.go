package incident

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/signal/otlp"
	"github.com/lastgood/lastgood/internal/store"
)

// sampleTrace is an agent's failed task: a tool call that timed out under
// the agent span, with a prompt, a tool argument and secrets in it.
func sampleTrace(t0 time.Time) otlp.TraceSample {
	return otlp.TraceSample{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Why: []string{"slowest", "failed"}, Shape: "search > lookup",
		Duration: 12 * time.Millisecond, Failed: true,
		Spans: []otlp.SpanRecord{
			{SpanID: "a1", Name: "invoke_agent helper", Start: t0, Duration: 12 * time.Millisecond, Error: true, Status: "every tool failed",
				Attrs: []otlp.Attr{{Key: "gen_ai.input.messages", Value: `[{"role":"user","content":"what is my balance? my pin is 1234"}]`},
					{Key: "gen_ai.request.model", Value: "fake-1"}},
				Events: []otlp.EventRecord{{Name: "gen_ai.evaluation.result", Attrs: []otlp.Attr{{Key: "gen_ai.evaluation.name", Value: "helpfulness"},
					{Key: "gen_ai.evaluation.score.value", Value: "0.4"}, {Key: "gen_ai.evaluation.explanation", Value: "the answer repeats the pin 1234"}}}}},
			{SpanID: "b2", ParentID: "a1", Name: "execute_tool search", Start: t0.Add(time.Millisecond), Duration: 5 * time.Millisecond, Error: true,
				Status: "search: upstream timed out, token=" + secrets[7],
				Attrs: []otlp.Attr{{Key: "gen_ai.tool.name", Value: "search"}, {Key: "gen_ai.tool.call.arguments", Value: `{"q":"balance of account 99"}`},
					{Key: "api_key", Value: secrets[4]}}},
			{SpanID: "c3", ParentID: "a1", Name: "execute_tool lookup", Start: t0.Add(7 * time.Millisecond), Duration: time.Millisecond,
				Attrs: []otlp.Attr{{Key: "gen_ai.tool.name", Value: "lookup"}}},
		},
	}
}

func TestTraceSamplesInTheBundle(t *testing.T) {
	f := newFixture(t)
	t0 := f.base.Add(time.Second)
	asked := ""
	f.start(t, Config{Recovery: -1, Traces: func(app string, rev, stable int) []otlp.TraceSample {
		asked = app + " " + string(rune('0'+rev)) + " " + string(rune('0'+stable))
		return []otlp.TraceSample{sampleTrace(t0)}
	}})
	f.event(t, time.Second, "traffic.weight", "step 1: 10% of traffic on revision 2", nil)
	f.end(t, store.PhaseRolledBack, "check", "check shape failed")
	f.event(t, 2*time.Second, "rollout.rolled-back", "rolled back to revision 1: check shape failed", nil)
	id := ID("web", f.rollout.Number)
	inc := loadWhen(t, f.dir, id, func(*Incident) bool { return true })
	if asked != "web 2 1" || len(inc.Traces) != 1 {
		t.Fatalf("asked %q, %d traces", asked, len(inc.Traces))
	}
	md, err := os.ReadFile(filepath.Join(f.dir, id, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	tree := strings.Join([]string{
		"invoke_agent helper  +0 ms, 12 ms  ERROR: every tool failed",
		"    gen_ai.input.messages = (content left out: 64 bytes; analysis.traces.keepContent keeps it)",
		"    gen_ai.request.model = fake-1",
		"    event gen_ai.evaluation.result",
		"      gen_ai.evaluation.name = helpfulness",
		"      gen_ai.evaluation.score.value = 0.4",
		"      gen_ai.evaluation.explanation = (content left out: 31 bytes; analysis.traces.keepContent keeps it)",
		"  execute_tool search  +1 ms, 5 ms  ERROR: search: upstream timed out, " + redact.Marker,
	}, "\n")
	for _, want := range []string{
		"## Traces of revision 2 (a sample",
		"### Trace 4bf92f3577b34da6a3ce929d0e0e4736 (slowest, failed): 12 ms, failed, shape search > lookup",
		tree,
		"      gen_ai.tool.call.arguments = (content left out: 29 bytes",
		"      api_key = " + redact.Marker,
		"  execute_tool lookup  +7 ms, 1 ms\n      gen_ai.tool.name = lookup",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	for _, leak := range []string{"1234", "balance", "account 99"} {
		if strings.Contains(string(md), leak) {
			t.Errorf("report.md shows content %q", leak)
		}
	}
	for _, file := range []string{"report.md", "report.html", "incident.json"} {
		assertNoSecrets(t, filepath.Join(f.dir, id, file))
	}
	html, _ := os.ReadFile(filepath.Join(f.dir, id, "report.html"))
	if !strings.Contains(string(html), `<pre class="trace">invoke_agent helper`) {
		t.Errorf("report.html has no span tree:\n%s", html)
	}
}

func TestKeepContentKeepsContentButNotSecrets(t *testing.T) {
	s := sampleTrace(time.Unix(0, 0))
	got := redactAttrs(s.Spans[1].Attrs, false, true)
	if got[1].Value != `{"q":"balance of account 99"}` || got[2].Value == secrets[4] {
		t.Errorf("keepContent: %+v", got)
	}
	got = redactAttrs(s.Spans[0].Events[0].Attrs, matches("gen_ai.choice", contentEvents), false)
	if !strings.HasPrefix(got[0].Value, "(content left out") {
		t.Errorf("an event of content: %+v", got)
	}
}
