package analysis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
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
	return rate || mean || name == evalScore || name == traceShape
}

// parseTolerance reads a manifest tolerance of an agent metric: "20%" is
// relative to the stable's value, a plain number is in the metric's unit.
func parseTolerance(metric, field, s, unit string, decrease bool) (judge.Tolerance, error) {
	s = strings.TrimSpace(s)
	tol := judge.Tolerance{Decrease: decrease}
	num, pct := strings.CutSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return tol, fmt.Errorf("%s: %w: %s wants a number of %s such as 0.05, or a share of the stable's value such as 20%%, not %q", metric, judge.ErrBadValue, field, unit, s)
	}
	tol.Value, tol.Relative = f, pct
	if pct {
		tol.Value /= 100
	}
	if err := tol.Validate(); err != nil {
		return tol, fmt.Errorf("%s: %s: %w", metric, field, err)
	}
	return tol, nil
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

func compileTrace(t Target, src Sources, name string, cm *manifest.Compare, share float64) (checker, error) {
	metric := cm.Metric
	switch metric {
	case traceShape:
		return compileShape(t, src, name, cm.MaxIncrease, share)
	case evalScore:
		tol, err := parseTolerance(metric, "maxDecrease", cm.MaxDecrease, "points", true)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(cm.Name) == "" {
			return nil, fmt.Errorf("%s: %w: name the evaluation (gen_ai.evaluation.name) to compare", metric, judge.ErrBadValue)
		}
		eval := cm.Name
		m := traceMean{unit: "points", scale: otlp.ScoreScale, cap: scoreCap, of: "evaluations", pick: func(a otlp.Aggregate) otlp.Dist { return a.Evals[eval] }}
		return &meanCheck{src: src, target: t, check: name, metric: metric + " " + eval, mean: m, tol: tol, alpha: share}, nil
	}
	if m, ok := traceMeans[metric]; ok {
		tol, err := parseTolerance(metric, "maxIncrease", cm.MaxIncrease, m.unit, false)
		if err != nil {
			return nil, err
		}
		return &meanCheck{src: src, target: t, check: name, metric: metric, mean: m, tol: tol, alpha: share}, nil
	}
	tol, err := parseTolerance(metric, "maxIncrease", cm.MaxIncrease, "a share", false)
	if err != nil {
		return nil, err
	}
	j := judge.Compare{Check: name, Metric: judge.ErrorRate, MaxIncrease: tol.Value, Relative: tol.Relative}
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

// traceMean is a compare metric on a mean: of one value per task
// (invoke_agent span), or per evaluation, judged by judge.JudgeMeans.
type traceMean struct {
	unit string
	// scale is how many units of the Dist make one of unit (evaluation
	// scores are kept in thousandths); 0 is 1.
	scale float64
	// cap picks the cap (a power of two, in the Dist's units) from the
	// stable's values; nil is judge.MeanCap of the mean.
	cap func(otlp.Dist) int
	// of names the trials, "tasks" when empty.
	of   string
	pick func(otlp.Aggregate) otlp.Dist
}

const (
	evalScore  = "evalScore"
	traceShape = "traceShape"
)

var traceMeans = map[string]traceMean{
	"tokensPerTask":    {unit: "tokens", pick: func(a otlp.Aggregate) otlp.Dist { return a.TokensPerTask }},
	"toolCallsPerTask": {unit: "calls", pick: func(a otlp.Aggregate) otlp.Dist { return a.ToolCallsPerTask }},
}

// scoreCap is the cap of an evaluation score: the smallest power of two
// at or above the stable's largest score, so that scores on a fixed
// scale (0 to 1, 1 to 5) are never cut and the test's range is at most
// twice theirs.
func scoreCap(d otlp.Dist) int {
	k := 0
	for uint64(1)<<k < d.Max && k < 62 {
		k++
	}
	return k
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
	tol    judge.Tolerance
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
			if c.mean.cap != nil {
				c.capK = c.mean.cap(st)
			} else {
				c.capK = judge.MeanCap(st.Mean())
			}
			c.base = [2]otlp.Dist{can, st}
			c.state = judge.MeanState{}
		}
	}
	of := c.mean.of
	if of == "" {
		of = "tasks"
	}
	ev := judge.Evidence{Metric: judge.Metric(c.metric), Unit: c.mean.unit, PValue: 1, Alpha: c.alpha, Threshold: c.tol.Value}
	if c.capK == 0 && (c.mean.cap == nil || st.N < minCapTasks) {
		r := result(c.check, at, judge.Inconclusive, fmt.Sprintf("not yet conclusive: the stable revision has %d of the %d %s that fix the comparison's cap", st.N, minCapTasks, of), ev)
		if st.N == 0 {
			r.Reason = NoSpans(c.target.Stable) + " (the stable revision)"
		}
		if can.N == 0 {
			r.Reason = NoSpans(c.target.Canary)
		}
		return r
	}
	limit := float64(uint64(1) << c.capK)
	scale := c.mean.scale
	if scale == 0 {
		scale = 1
	}
	means := func(d, base otlp.Dist) (judge.Means, float64) {
		n := float64(d.N - base.N)
		m := judge.Means{N: n, Sum: (d.Capped(c.capK) - base.Capped(c.capK)) / limit}
		if n == 0 {
			return m, 0
		}
		return m, (d.Sum - base.Sum) / n / scale
	}
	cm, cmean := means(can, c.base[0])
	sm, smean := means(st, c.base[1])
	var jr judge.Result
	c.state, jr = judge.JudgeMeans(c.check, c.metric, c.mean.unit, of, c.state, cm, sm, limit/scale, c.tol, cmean, smean, c.alpha)
	r := Result{Result: jr, At: at}
	r.Reason = c.metric + ": " + jr.Reason
	r.Data = jr.Verdict != judge.Inconclusive || (cm.N >= judge.MinRequests && sm.N >= judge.MinRequests)
	if jr.Verdict == judge.Inconclusive && can.N == 0 {
		r.Reason = NoSpans(c.target.Canary)
	}
	return r
}

func (c *meanCheck) close() {}
