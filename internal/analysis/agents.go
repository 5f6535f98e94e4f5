package analysis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
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
	_, rate := traceRates[name]
	_, mean := traceMeans[name]
	return rate || mean
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
	if _, ok := traceMeans[metric]; ok {
		return compileMean(t, src, name, metric, maxIncrease, share)
	}
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

// traceMean is a per-task compare metric: the mean of one value per
// task (invoke_agent span), judged by judge.JudgeMeans.
type traceMean struct {
	unit string
	pick func(otlp.Aggregate) otlp.Dist
}

var traceMeans = map[string]traceMean{
	"tokensPerTask":    {"tokens", func(a otlp.Aggregate) otlp.Dist { return a.TokensPerTask }},
	"toolCallsPerTask": {"calls", func(a otlp.Aggregate) otlp.Dist { return a.ToolCallsPerTask }},
}

// minCapTasks is how many stable tasks fix the cap of a per-task
// comparison.
const minCapTasks = 20

// meanCheck is a compare check on a per-task agent metric. Its cap is
// fixed at the first look at which the stable revision has minCapTasks
// tasks; only tasks after that look are evidence.
type meanCheck struct {
	src    Sources
	target Target
	check  string
	metric string
	mean   traceMean
	delta  float64
	alpha  float64
	capK   int // 0: not fixed yet
	base   [2]otlp.Dist
	state  judge.MeanState
}

func (c *meanCheck) dist(rev int) (otlp.Dist, bool) {
	if c.src.Traces == nil {
		return otlp.Dist{}, false
	}
	a, ok := c.src.Traces(c.target.App, rev)
	if !ok {
		return otlp.Dist{}, false
	}
	return c.mean.pick(a), true
}

func (c *meanCheck) look(_ context.Context, at time.Time) Result {
	can, _ := c.dist(c.target.Canary)
	st, _ := c.dist(c.target.Stable)
	if c.capK == 0 || can.N < c.base[0].N || st.N < c.base[1].N {
		if st.N >= minCapTasks {
			c.capK = judge.MeanCap(st.Mean())
			c.base = [2]otlp.Dist{can, st}
			c.state = judge.MeanState{}
		}
	}
	ev := judge.Evidence{Metric: judge.Metric(c.metric), Unit: c.mean.unit, PValue: 1, Alpha: c.alpha, Threshold: c.delta}
	if c.capK == 0 {
		r := result(c.check, at, judge.Inconclusive, fmt.Sprintf("not yet conclusive: the stable revision has %d of the %d tasks that fix the comparison's cap", st.N, minCapTasks), ev)
		if st.N == 0 {
			r.Reason = NoSpans(c.target.Stable) + " (the stable revision)"
		}
		if can.N == 0 {
			r.Reason = NoSpans(c.target.Canary)
		}
		return r
	}
	limit := float64(uint64(1) << c.capK)
	means := func(d, base otlp.Dist) (judge.Means, float64) {
		n := float64(d.N - base.N)
		m := judge.Means{N: n, Sum: (d.Capped(c.capK) - base.Capped(c.capK)) / limit}
		if n == 0 {
			return m, 0
		}
		return m, (d.Sum - base.Sum) / n
	}
	cm, cmean := means(can, c.base[0])
	sm, smean := means(st, c.base[1])
	var jr judge.Result
	c.state, jr = judge.JudgeMeans(c.check, c.metric, c.mean.unit, c.state, cm, sm, limit, c.delta, cmean, smean, c.alpha)
	r := Result{Result: jr, At: at}
	r.Reason = c.metric + ": " + jr.Reason
	r.Data = jr.Verdict != judge.Inconclusive || (cm.N >= judge.MinRequests && sm.N >= judge.MinRequests)
	if jr.Verdict == judge.Inconclusive && can.N == 0 {
		r.Reason = NoSpans(c.target.Canary)
	}
	return r
}

func (c *meanCheck) close() {}

func compileMean(t Target, src Sources, name, metric, maxIncrease string, share float64) (checker, error) {
	d, err := strconv.ParseFloat(strings.TrimSpace(maxIncrease), 64)
	if err != nil || d < 0 || math.IsNaN(d) || math.IsInf(d, 0) {
		return nil, fmt.Errorf("%s: %w: maxIncrease wants a number of %s such as 200, not %q", metric, judge.ErrBadValue, traceMeans[metric].unit, maxIncrease)
	}
	return &meanCheck{src: src, target: t, check: name, metric: metric, mean: traceMeans[metric], delta: d, alpha: share}, nil
}
