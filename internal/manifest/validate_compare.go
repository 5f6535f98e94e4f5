package manifest

import (
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
	if c.MaxIncrease == "" {
		v.fail(path+".maxIncrease", "is required: how much worse than stable the new revision may be")
	} else if ok {
		v.amount(path+".maxIncrease", metric, u, c.MaxIncrease)
		if f, err := strconv.ParseFloat(c.MaxIncrease, 64); c.Metric == "errorRate" && err == nil && f >= 1 {
			v.fail(path+".maxIncrease", "errorRate's tolerance must be below 1 (a share of requests), got %s", c.MaxIncrease)
		}
	}
	v.errorStatuses(path, c.Metric, c.Errors)
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
