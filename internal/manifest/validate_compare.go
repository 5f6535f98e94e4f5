package manifest

import (
	"math"
	"strconv"
	"strings"
)

// statusMix is the compare metric of the shares of status classes.
const statusMix = "statusMix"

// compare checks a compare check: one of metric and latencyQuantile, a
// tolerance in the metric's unit, error statuses only for errorRate.
func (v *validator) compare(path string, c *Compare) {
	var u unit
	ok := true
	metric := c.Metric
	switch {
	case c.Metric != "" && c.LatencyQuantile != 0:
		v.fail(path, "set metric or latencyQuantile, not both")
		ok = false
	case c.LatencyQuantile != 0:
		metric = c.MetricName()
		u = latency
		if !(c.LatencyQuantile > 0 && c.LatencyQuantile < 1) {
			v.fail(path+".latencyQuantile", "must be a quantile between 0 and 1, like 0.999 for p99.9, got %g", c.LatencyQuantile)
			ok = false
		}
	case c.Metric == statusMix:
		u = fraction
	case c.Metric == "":
		v.fail(path+".metric", "is required: errorRate, latencyP50, latencyP90, latencyP99, latencyP999 or statusMix (or latencyQuantile: 0.999 in its place)")
		ok = false
	default:
		u, ok = v.compareMetric(path+".metric", c.Metric)
	}
	if ok && u == score {
		v.evalScore(path, c)
		return
	}
	if c.MaxDecrease != "" {
		v.fail(path+".maxDecrease", "is only for evalScore; %s is judged on maxIncrease", metric)
	}
	if c.Name != "" {
		v.fail(path+".name", "is only for evalScore (the evaluation to compare), not %s", metric)
	}
	_, agent := traceMetrics[c.Metric]
	switch {
	case c.MaxIncrease == "" && u == shape:
		// traceShape has a default tolerance.
	case c.MaxIncrease == "":
		v.fail(path+".maxIncrease", "is required: how much worse than stable the new revision may be")
	case !ok:
	case strings.HasSuffix(strings.TrimSpace(c.MaxIncrease), "%") && (!agent || u == shape):
		v.fail(path+".maxIncrease", "a relative tolerance like 20%% is for the agent metrics taskErrorRate, tokensPerTask, toolCallsPerTask, toolErrorRate and truncationRate; %s takes %s, got %q",
			metric, unitExample(u), c.MaxIncrease)
	case agent && strings.HasSuffix(strings.TrimSpace(c.MaxIncrease), "%"):
		v.relative(path+".maxIncrease", c.MaxIncrease, false)
	default:
		v.amount(path+".maxIncrease", metric, u, c.MaxIncrease)
		if f, err := strconv.ParseFloat(c.MaxIncrease, 64); (c.Metric == "errorRate" || u == shape) && err == nil && f >= 1 {
			v.fail(path+".maxIncrease", "%s's tolerance must be below 1, got %s", metric, c.MaxIncrease)
		}
	}
	v.errorStatuses(path, c.Metric, c.Errors)
}

// unitExample is how a tolerance in unit u is written, for messages.
func unitExample(u unit) string {
	switch u {
	case latency:
		return `a duration like "50ms"`
	case shape:
		return "a distance between 0 and 1 like 0.1"
	}
	return "a number like 0.01"
}

// evalScore checks an evalScore comparison: the evaluation's name and a
// maxDecrease, absolute (0.05) or relative (5%).
func (v *validator) evalScore(path string, c *Compare) {
	if strings.TrimSpace(c.Name) == "" {
		v.fail(path+".name", "is required for evalScore: the gen_ai.evaluation.name to compare, like helpfulness")
	}
	if c.MaxIncrease != "" {
		v.fail(path+".maxIncrease", "evalScore is judged on how far it falls: set maxDecrease, not maxIncrease")
	}
	switch s := strings.TrimSpace(c.MaxDecrease); {
	case s == "":
		v.fail(path+".maxDecrease", "is required for evalScore: how much lower than stable's the canary's score may be, like 0.05 or 5%%")
	case strings.HasSuffix(s, "%"):
		v.relative(path+".maxDecrease", s, true)
	default:
		v.amount(path+".maxDecrease", "evalScore", score, s)
	}
	v.errorStatuses(path, c.Metric, c.Errors)
}

// relative checks a relative tolerance: a number of percent, ≥ 0, and
// below 100 for a decrease.
func (v *validator) relative(path, s string, decrease bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		v.fail(path, "a relative tolerance is a number of percent, like 20%%, got %q", s)
	case f < 0:
		v.fail(path, "must not be negative, got %s", s)
	case decrease && f >= 100:
		v.fail(path, "a relative decrease must be below 100%%, got %s", s)
	}
}

// errorStatuses checks the statuses an errorRate counts.
func (v *validator) errorStatuses(path, metric string, e *ErrorStatuses) {
	if e == nil {
		return
	}
	if metric != "errorRate" {
		v.fail(path+".errors", "is only allowed with metric errorRate, got %q", metric)
		return
	}
	if len(e.Status) == 0 {
		v.fail(path+".errors.status", "list at least one status class or code, like [5xx, 404, 429]")
	}
	for i, s := range e.Status {
		if _, _, ok := ParseStatus(s); !ok {
			v.fail(index(path+".errors.status", i), "must be a status class from 1xx to 5xx or a code from 100 to 599, like 5xx or 404, got %q", s)
		}
	}
}

// ParseStatus reads one entry of errors.status: a class ("5xx", giving
// class 5) or a code ("404", giving code 404).
func ParseStatus(s string) (class, code int, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) == 3 && (strings.HasSuffix(s, "xx") || strings.HasSuffix(s, "XX")) && s[0] >= '1' && s[0] <= '5' {
		return int(s[0] - '0'), 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, false
	}
	return 0, n, true
}

// perRoute checks that perRoute compare checks have routes to compare and
// a metric the router counts per route.
func (v *validator) perRoute(a *App) {
	for i, c := range a.Analysis.Checks {
		if c.Compare == nil || !c.Compare.PerRoute {
			continue
		}
		path := index("analysis.checks", i) + ".compare.perRoute"
		if c.Compare.Metric == "requestRate" {
			v.fail(path, "requestRate follows the weights and is not compared per route")
		}
		if a.RouteLimit() == 0 {
			v.fail(path, "needs routes to compare: router.routes is 0")
		}
		if a.Kubernetes != nil || a.Image != "" {
			v.fail(path, "needs lastgood's router, which the kubernetes engine does not use")
		}
	}
}
