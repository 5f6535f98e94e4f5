package judge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Metric is a router metric a check reads.
type Metric string

// The router metrics. Latencies are quantiles of the request duration.
const (
	ErrorRate   Metric = "errorRate"
	LatencyP50  Metric = "latencyP50"
	LatencyP90  Metric = "latencyP90"
	LatencyP99  Metric = "latencyP99"
	LatencyP999 Metric = "latencyP999"
	RequestRate Metric = "requestRate"
)

// quantilePrefix starts the name of a latency quantile metric given by
// its quantile (LatencyQuantile).
const quantilePrefix = "latencyQuantile="

// LatencyQuantile returns the metric of the request duration's
// q-quantile, 0 < q < 1, as a manifest's `latencyQuantile: 0.999` asks.
func LatencyQuantile(q float64) Metric {
	return Metric(quantilePrefix + strconv.FormatFloat(q, 'g', -1, 64))
}

// DefaultAlpha is the false-rollback budget of a rollout when the manifest
// does not set one: at most a 1% chance that a canary as good as the stable
// revision is rolled back by any of its checks.
const DefaultAlpha = 0.01

// ErrUnknownMetric is returned for a metric name the judge does not know.
var ErrUnknownMetric = errors.New("unknown metric")

// ErrBadValue is returned for a tolerance or bound that cannot be read.
var ErrBadValue = errors.New("bad value")

// ParseMetric checks a metric name from a manifest.
func ParseMetric(s string) (Metric, error) {
	m := Metric(s)
	switch m {
	case ErrorRate, LatencyP50, LatencyP90, LatencyP99, LatencyP999, RequestRate:
		return m, nil
	}
	if _, ok := m.Quantile(); ok {
		return m, nil
	}
	return "", fmt.Errorf("%w %q (want errorRate, latencyP50, latencyP90, latencyP99, latencyP999 or requestRate)", ErrUnknownMetric, s)
}

// Quantile returns the quantile a latency metric reads, and false for the
// other metrics.
func (m Metric) Quantile() (float64, bool) {
	switch m {
	case LatencyP50:
		return 0.5, true
	case LatencyP90:
		return 0.9, true
	case LatencyP99:
		return 0.99, true
	case LatencyP999:
		return 0.999, true
	}
	if rest, ok := strings.CutPrefix(string(m), quantilePrefix); ok {
		q, err := strconv.ParseFloat(rest, 64)
		if err == nil && q > 0 && q < 1 {
			return q, true
		}
	}
	return 0, false
}

// Unit names the unit of the metric's values in Evidence.
func (m Metric) Unit() string {
	switch m {
	case ErrorRate:
		return "fraction"
	case RequestRate:
		return "1/s"
	}
	return "s"
}

// ParseValue reads a tolerance or bound as written in a manifest into the
// metric's unit: a Go duration ("50ms") for latencies, giving seconds; a
// number for rates ("0.01"; "1%" is also read as 0.01).
func ParseValue(m Metric, s string) (float64, error) {
	s = strings.TrimSpace(s)
	if _, ok := m.Quantile(); ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %s wants a duration such as 50ms, not %q", ErrBadValue, m, s)
		}
		return d.Seconds(), nil
	}
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s wants a number such as 0.01, not %q", ErrBadValue, m, s)
	}
	if pct {
		v /= 100
	}
	return v, nil
}

// Budget returns the α each of checks statistical checks gets so that,
// together, they roll back a canary that is in truth within every
// tolerance with probability at most alpha: Bonferroni, alpha/checks.
//
// The union bound needs no independence between checks, and because each
// check's test is anytime-valid (its error probability is over the whole,
// continuously monitored rollout, not one look) the sum holds under
// continuous monitoring too: P(some check ever fails wrongly) ≤ Σ α/k = α.
// Bonferroni is conservative when checks are strongly correlated (an error
// rate and a latency of the same requests); it never overspends.
func Budget(alpha float64, checks int) float64 {
	if checks < 1 {
		return alpha
	}
	return alpha / float64(checks)
}
