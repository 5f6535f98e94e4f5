package prometheus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func compile(t *testing.T, address, query, failIf, passIf string, opts ...Option) *Check {
	t.Helper()
	c, err := Compile(manifest.Prometheus{Address: address, Query: query}, failIf, passIf, opts...)
	if err != nil {
		t.Fatalf("Compile(%q): %v", query, err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestAgainstPrometheus(t *testing.T) {
	tg := startTarget(t)
	address := startPrometheus(t, tg)
	rate := `sum(rate(checkout_failed_total{revision="{{.Revision}}"}[10s]))`
	// The canary's counter grows at every scrape; wait until rate() has the
	// two samples it needs.
	waitForQuery(t, address, `sum(rate(checkout_failed_total{revision="2"}[10s])) > 0`)

	ctx := context.Background()
	canary := TemplateData{App: "web", Revision: 2, StableRevision: 1}
	stable := TemplateData{App: "web", Revision: 1, StableRevision: 1}

	t.Run("template renders the revision; fail and pass", func(t *testing.T) {
		c := compile(t, address, rate, "result > 0.1", "")
		out := c.Evaluate(ctx, canary)
		if out.Verdict != Fail || out.Err != nil {
			t.Fatalf("canary: got %+v, want fail", out)
		}
		if want := `sum(rate(checkout_failed_total{revision="2"}[10s]))`; out.Query != want {
			t.Errorf("rendered query %q, want %q", out.Query, want)
		}
		if out.Value <= 0.1 {
			t.Errorf("canary value %v, want > 0.1", out.Value)
		}
		out = c.Evaluate(ctx, stable)
		if out.Verdict != Pass || out.Value != 0 || out.Err != nil {
			t.Fatalf("stable: got %+v, want pass with 0", out)
		}
	})

	t.Run("gauge with App and StableRevision in the template", func(t *testing.T) {
		c := compile(t, address,
			`queue_depth{job="target",revision="{{.Revision}}"} - on() queue_depth{revision="{{.StableRevision}}"} + 0*count(up{job!="{{.App}}"})`,
			"result > 30", "result <= 0")
		out := c.Evaluate(ctx, canary)
		if out.Verdict != Fail || out.Value != 39 {
			t.Errorf("42-3: got %+v, want fail with 39", out)
		}
		out = c.Evaluate(ctx, stable)
		if out.Verdict != Pass || out.Value != 0 {
			t.Errorf("3-3: got %+v, want pass with 0", out)
		}
		if !strings.Contains(out.Query, `job!="web"`) {
			t.Errorf("App not rendered: %q", out.Query)
		}
	})

	t.Run("neither failIf nor passIf holds", func(t *testing.T) {
		c := compile(t, address, `queue_depth{revision="{{.Revision}}"}`, "result > 100", "result < 10")
		out := c.Evaluate(ctx, canary)
		if out.Verdict != Inconclusive || out.Err != nil || out.Value != 42 {
			t.Errorf("got %+v, want inconclusive without error, value 42", out)
		}
	})

	t.Run("only passIf", func(t *testing.T) {
		c := compile(t, address, `queue_depth{revision="{{.Revision}}"}`, "", "result < 10")
		if out := c.Evaluate(ctx, canary); out.Verdict != Fail {
			t.Errorf("42 < 10 is false: got %+v, want fail", out)
		}
		if out := c.Evaluate(ctx, stable); out.Verdict != Pass {
			t.Errorf("3 < 10: got %+v, want pass", out)
		}
	})

	t.Run("scalar result", func(t *testing.T) {
		c := compile(t, address, `scalar(queue_depth{revision="2"}) / 2`, "result != 21", "")
		if out := c.Evaluate(ctx, canary); out.Verdict != Pass || out.Value != 21 {
			t.Errorf("got %+v, want pass with 21", out)
		}
	})

	inconclusiveCases := []struct {
		name, query string
		want        error
		warning     string
	}{
		{"no data", `queue_depth{revision="9"}`, ErrNoData, "no series"},
		{"several series", `queue_depth`, ErrManySeries, "returned 2 series"},
		{"NaN", `sum(queue_depth{revision="2"}) / 0 * 0`, ErrNaN, "NaN"},
		{"query error on the server", `queue_depth + on() queue_depth`, ErrQuery, "many-to-many"},
		{"range vector", `queue_depth[5s]`, ErrUnsupported, "matrix"},
	}
	for _, tc := range inconclusiveCases {
		t.Run(tc.name, func(t *testing.T) {
			c := compile(t, address, tc.query, "result > 0", "")
			out := c.Evaluate(ctx, canary)
			assertInconclusive(t, out, tc.want, tc.warning)
		})
	}
}

func assertInconclusive(t *testing.T, out Outcome, want error, warning string) {
	t.Helper()
	if out.Verdict != Inconclusive {
		t.Fatalf("verdict %q, want inconclusive (%+v)", out.Verdict, out)
	}
	if !errors.Is(out.Err, want) {
		t.Errorf("err %v, want %v", out.Err, want)
	}
	if out.Value != 0 {
		t.Errorf("value %v, want 0 when inconclusive", out.Value)
	}
	if !strings.Contains(strings.Join(out.Warnings, "\n"), warning) {
		t.Errorf("warnings %q do not mention %q", out.Warnings, warning)
	}
}

func TestUnreachablePrometheusIsInconclusive(t *testing.T) {
	c := compile(t, closedAddress(t), `up`, "result > 0", "")
	out := c.Evaluate(context.Background(), TemplateData{App: "web", Revision: 2})
	assertInconclusive(t, out, ErrUnreachable, "connection refused")
}

func TestHangingPrometheusTimesOut(t *testing.T) {
	c := compile(t, hangingServer(t), `up`, "result > 0", "", WithTimeout(300*time.Millisecond))
	start := time.Now()
	out := c.Evaluate(context.Background(), TemplateData{App: "web", Revision: 2})
	took := time.Since(start)
	assertInconclusive(t, out, ErrTimeout, "no answer within 300ms")
	if took > time.Minute { // generous: a busy machine delays timers, it does not stop them
		t.Errorf("took %s with a 300ms timeout", took)
	}

	// The caller's context bounds an evaluation too.
	slow := compile(t, hangingServer(t), `up`, "result > 0", "", WithTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out = slow.Evaluate(ctx, TemplateData{})
	if out.Verdict != Inconclusive || !errors.Is(out.Err, context.DeadlineExceeded) {
		t.Errorf("caller's deadline: got %+v, want inconclusive wrapping context.DeadlineExceeded", out)
	}
}

// TestNamespaceAndPodNeedAnEngineThatHasThem: a query with {{.Namespace}}
// and {{.Pod}} compiles, renders them when the engine placed the revision,
// and is inconclusive, naming the key, on an engine without pods.
func TestNamespaceAndPodNeedAnEngineThatHasThem(t *testing.T) {
	c := compile(t, closedAddress(t), `sum(up{namespace="{{.Namespace}}",pod=~"{{.Pod}}"})`, "result > 0", "")
	out := c.Evaluate(context.Background(), TemplateData{App: "web", Revision: 2, Namespace: "shop", Pod: "web-2-[a-z0-9]{5}"})
	if want := `sum(up{namespace="shop",pod=~"web-2-[a-z0-9]{5}"})`; out.Query != want {
		t.Errorf("rendered %q, want %q", out.Query, want)
	}
	out = c.Evaluate(context.Background(), TemplateData{App: "web", Revision: 2})
	assertInconclusive(t, out, ErrTemplateExec, `no entry for key "Namespace"`)
}
