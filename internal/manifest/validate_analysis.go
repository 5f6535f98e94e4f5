package manifest

import (
	"errors"
	"maps"
	"math"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// unit is what a metric's values are measured in.
type unit int

const (
	fraction  unit = iota // a share of requests, 0..1
	latency               // a duration
	perSecond             // requests per second
	perTask               // a count per task (tokens, tool calls)
	score                 // an evaluation score, in the evaluator's unit
	shape                 // a distance between distributions, 0..1
)

// metrics are the router metrics that compare and threshold checks use.
var metrics = map[string]unit{
	"errorRate":   fraction,
	"latencyP50":  latency,
	"latencyP90":  latency,
	"latencyP99":  latency,
	"latencyP999": latency,
	"requestRate": perSecond,
}

// traceMetrics are the agent metrics, read from the spans replicas send
// lastgood's OTLP receiver; compare checks only (docs/agents.md).
var traceMetrics = map[string]unit{
	"toolErrorRate":    fraction,
	"taskErrorRate":    fraction,
	"truncationRate":   fraction,
	"tokensPerTask":    perTask,
	"toolCallsPerTask": perTask,
	"evalScore":        score,
	"traceShape":       shape,
}

func (v *validator) analysis(an *Analysis) {
	v.positive("analysis.interval", an.Interval)
	v.positive("analysis.routerInterval", an.RouterInterval)
	// NaN fails both comparisons, and so is refused too.
	if !(an.Alpha > 0 && an.Alpha <= maxAlpha) {
		v.fail("analysis.alpha", "must be a probability greater than 0 and at most %g, like 0.01 (the default), got %g", maxAlpha, an.Alpha)
	}
	first := map[string]int{}
	for i := range an.Checks {
		path := index("analysis.checks", i)
		c := &an.Checks[i]
		if c.Name == "" {
			v.fail(path+".name", "is required")
		} else if j, dup := first[c.Name]; dup {
			v.fail(path+".name", "%q is already the name of checks[%d]", c.Name, j)
		} else {
			first[c.Name] = i
		}
		v.check(path, c)
	}
}

// checkSources names the fields of Check of which exactly one is set.
var checkSources = []string{"compare", "threshold", "prometheus", "logs", "resources", "webhook", "journey"}

func (v *validator) check(path string, c *Check) {
	set := setNames(checkSources, []bool{c.Compare != nil, c.Threshold != nil, c.Prometheus != nil,
		c.Logs != nil, c.Resources != nil, c.Webhook != nil, c.Journey != nil})
	switch len(set) {
	case 0:
		v.fail(path, "set one of %s", list(checkSources))
	case 1:
	default:
		v.fail(path, "set only one of %s in a check; got %s", list(checkSources), list(set))
	}
	if c.Compare != nil {
		v.compare(path+".compare", c.Compare)
	}
	if t := c.Threshold; t != nil {
		u, ok := v.metric(path+".threshold.metric", t.Metric)
		v.errorStatuses(path+".threshold", t.Metric, t.Errors)
		if t.Max == "" && t.Min == "" {
			v.fail(path+".threshold", "set max, min or both")
		}
		for _, b := range []struct{ name, value string }{{"max", t.Max}, {"min", t.Min}} {
			if ok && b.value != "" {
				v.amount(path+".threshold."+b.name, t.Metric, u, b.value)
			}
		}
	}
	if p := c.Prometheus; p != nil {
		v.prometheus(path, p)
		if c.FailIf == "" && c.PassIf == "" {
			v.fail(path, "a prometheus check needs failIf or passIf, an expression over result like \"result > 0.1\"")
		}
	} else {
		for _, e := range []struct{ name, value string }{{"failIf", c.FailIf}, {"passIf", c.PassIf}} {
			if e.value != "" {
				v.fail(path+"."+e.name, "is only allowed with prometheus")
			}
		}
	}
	if l := c.Logs; l != nil {
		v.logs(path+".logs", l)
	}
	if r := c.Resources; r != nil {
		v.resources(path+".resources", r)
	}
	if h := c.Webhook; h != nil {
		v.webhook(path+".webhook", h)
	}
	if j := c.Journey; j != nil {
		v.journey(path+".journey", j)
	}
}

// compareMetric checks the metric of a compare check, a router or an
// agent metric, and returns its unit.
func (v *validator) compareMetric(path, name string) (unit, bool) {
	if u, ok := traceMetrics[name]; ok {
		return u, true
	}
	u, ok := metrics[name]
	if !ok {
		names := slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(metrics)), statusMix)))
		names = append(names, slices.Sorted(maps.Keys(traceMetrics))...)
		v.fail(path, "must be one of %s, got %q", strings.Join(names, ", "), name)
	}
	return u, ok
}

// metric checks a router metric name and returns its unit.
func (v *validator) metric(path, name string) (unit, bool) {
	if _, ok := traceMetrics[name]; ok {
		v.fail(path, "%s is an agent metric, judged canary against stable: use compare, not threshold", name)
		return 0, false
	}
	u, ok := metrics[name]
	if !ok {
		names := slices.Sorted(maps.Keys(metrics))
		v.fail(path, "must be one of %s, got %q", strings.Join(names, ", "), name)
	}
	return u, ok
}

// amount checks a value written for a metric: a duration for latencies, a
// number otherwise; never negative.
func (v *validator) amount(path, metric string, u unit, s string) {
	if u == latency {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			v.fail(path, "%s is a latency: expected a duration like \"50ms\", got %q", metric, s)
		case d < 0:
			v.fail(path, "must not be negative, got %s", s)
		}
		return
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		v.fail(path, "%s is a number: expected a number like 0.01, got %q", metric, s)
	case f < 0:
		v.fail(path, "must not be negative, got %s", s)
	case u == fraction && f > 1:
		v.fail(path, "%s is a fraction of requests between 0 and 1, got %s", metric, s)
	}
}

func (v *validator) prometheus(path string, p *Prometheus) {
	u, err := url.Parse(p.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.fail(path+".prometheus.address", "must be an http:// or https:// URL, like http://127.0.0.1:9090, got %q", p.Address)
	}
	if strings.TrimSpace(p.Query) == "" {
		v.fail(path+".prometheus.query", "is required: a PromQL query")
	}
}

func (v *validator) logs(path string, l *Logs) {
	if l.Match == "" {
		v.fail(path+".match", "is required: a regular expression for the lines to count")
	} else if _, err := regexp.Compile(l.Match); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			if at, frag := regexpErrorAt(l.Match, se); at >= 0 {
				v.fail(path+".match", "invalid regular expression at character %d: %s: %q",
					utf8.RuneCountInString(l.Match[:at])+1, se.Code, frag)
			} else {
				v.fail(path+".match", "invalid regular expression: %s: %q", se.Code, se.Expr)
			}
		} else {
			v.fail(path+".match", "invalid regular expression: %v", err)
		}
	}
	if l.Max < 0 {
		v.fail(path+".max", "must not be negative, got %d", l.Max)
	}
}

// regexpErrorAt returns the byte offset in pattern where a syntax error
// is (or -1) and the part of the pattern to show. For unbalanced
// parentheses the parser reports the whole pattern, so the offending
// parenthesis is found by scanning.
func regexpErrorAt(pattern string, se *syntax.Error) (int, string) {
	if se.Code != syntax.ErrMissingParen && se.Code != syntax.ErrUnexpectedParen {
		return strings.Index(pattern, se.Expr), se.Expr
	}
	at := parenAt(pattern)
	if at < 0 {
		return -1, se.Expr
	}
	return at, pattern[at:]
}

// parenAt returns the offset of the first ")" without a "(", else of the
// last "(" without a ")", else -1.
func parenAt(pattern string) int {
	var open []int
	inClass := false
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\':
			i++ // skip the escaped character
		case inClass:
			inClass = c != ']'
		case c == '[':
			inClass = true
			if i+1 < len(pattern) && pattern[i+1] == ']' {
				i++ // a leading ] is a literal
			}
		case c == '(':
			open = append(open, i)
		case c == ')' && len(open) == 0:
			return i
		case c == ')':
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return open[len(open)-1]
	}
	return -1
}

func (v *validator) resources(path string, r *Resources) {
	if r.MaxRSS == 0 && r.MaxCPU == 0 && r.MaxFDs == 0 {
		v.fail(path, "set at least one of maxRSS, maxCPU and maxFDs")
	}
	if r.MaxRSS < 0 {
		v.fail(path+".maxRSS", "must not be negative, got %d", int64(r.MaxRSS))
	}
	if r.MaxCPU < 0 || math.IsNaN(r.MaxCPU) || math.IsInf(r.MaxCPU, 0) {
		v.fail(path+".maxCPU", "must be a number of cores, 0 or more, got %g", r.MaxCPU)
	}
	if r.MaxFDs < 0 {
		v.fail(path+".maxFDs", "must not be negative, got %d", r.MaxFDs)
	}
}
