package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// traceRate is a compare metric read from the OTLP receiver's
// aggregates: a share of spans, judged by the same two-sample e-process
// as the router's errorRate (judge.Compare with judge.ErrorRate), on
// counts of spans rather than of requests.
type traceRate struct {
	// of says what is counted, for reasons: "execute_tool spans that failed".
	of   string
	pick func(otlp.Aggregate) otlp.Rate
}

// traceRates are the agent metrics of compare checks (docs/agents.md).
var traceRates = map[string]traceRate{
	"toolErrorRate":  {"execute_tool spans that failed", func(a otlp.Aggregate) otlp.Rate { return a.Tools }},
	"taskErrorRate":  {"invoke_agent spans that failed", func(a otlp.Aggregate) otlp.Rate { return a.Tasks }},
	"truncationRate": {"answers cut off (finish reason length)", func(a otlp.Aggregate) otlp.Rate { return a.Finish }},
}

// TraceMetric reports whether name is a compare metric read from traces.
func TraceMetric(name string) bool {
	_, ok := traceRates[name]
	return ok
}

// traceCheck is a compare check on an agent metric: canary against
// stable, live, as compareCheck does for the router's counters.
type traceCheck struct {
	src    Sources
	target Target
	metric string
	rate   traceRate
	judge  judge.Compare
	alpha  float64
	win    window
	state  judge.RateState
}

func compileTrace(t Target, src Sources, name, metric, maxIncrease string, share float64) (checker, error) {
	inc, err := judge.ParseValue(judge.ErrorRate, maxIncrease)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", metric, err)
	}
	j := judge.Compare{Check: name, Metric: judge.ErrorRate, MaxIncrease: inc}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &traceCheck{src: src, target: t, metric: metric, rate: traceRates[metric], judge: j, alpha: share}, nil
}

// sample turns a revision's aggregate into the judge's counts.
func (c *traceCheck) sample(rev int) (judge.Sample, bool) {
	if c.src.Traces == nil {
		return judge.Sample{}, false
	}
	a, ok := c.src.Traces(c.target.App, rev)
	if !ok {
		return judge.Sample{}, false
	}
	r := c.rate.pick(a)
	return judge.Sample{Requests: r.N, Errors: r.Failed}, true
}

// NoSpans is the reason of a trace check while a revision sent no span.
func NoSpans(rev int) string {
	return fmt.Sprintf("no spans from revision %d: is the OpenTelemetry SDK exporting to $OTEL_EXPORTER_OTLP_ENDPOINT?", rev)
}

func (c *traceCheck) look(_ context.Context, at time.Time) Result {
	can, okC := c.sample(c.target.Canary)
	st, okS := c.sample(c.target.Stable)
	all := map[int]judge.Sample{c.target.Canary: can, c.target.Stable: st}
	obs := judge.Observation{Canary: c.win.since(all, c.target.Canary), Stable: c.win.since(all, c.target.Stable), History: c.win.base[c.target.Stable]}
	var jr judge.Result
	c.state, jr = c.judge.Judge(c.state, obs, c.alpha)
	jr.Evidence.Metric = judge.Metric(c.metric)
	jr.Evidence.Warnings = append(jr.Evidence.Warnings, "counts "+c.rate.of+" as the failures, spans as the trials")
	r := Result{Result: jr, At: at}
	r.Reason = fmt.Sprintf("%s (%s): %s", c.metric, c.rate.of, jr.Reason)
	r.Data = jr.Verdict != judge.Inconclusive ||
		(obs.Canary.Requests >= judge.MinRequests && obs.Stable.Requests >= judge.MinRequests)
	switch {
	case jr.Verdict != judge.Inconclusive:
	case !okC || can.Requests == 0:
		r.Reason = NoSpans(c.target.Canary)
	case !okS || st.Requests == 0:
		r.Reason = NoSpans(c.target.Stable) + " (the stable revision)"
	}
	return r
}

func (c *traceCheck) close() {}
