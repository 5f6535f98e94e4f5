package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
)

// Derived checks. The status-mix and per-route checks, and a check that
// names its own error statuses, are compare checks over samples derived
// from the router's: the same two-sample test on another count. Each is
// one or more plain compareChecks fed by a projection of one snapshot of
// the router's counters per look.

// errorStatuses is a compiled errors.status list; nil counts as the
// router does (5xx and requests without a whole answer).
type errorStatuses struct {
	classes [6]bool
	codes   map[int]bool
}

func compileErrorStatuses(e *manifest.ErrorStatuses) (*errorStatuses, error) {
	if e == nil {
		return nil, nil
	}
	out := &errorStatuses{codes: map[int]bool{}}
	for _, s := range e.Status {
		class, code, ok := manifest.ParseStatus(s)
		if !ok {
			return nil, fmt.Errorf("errors.status: %q is not a status class or code", s)
		}
		if class > 0 {
			out.classes[class] = true
		} else {
			out.codes[code] = true
		}
	}
	return out, nil
}

// count returns s with Errors counted by e: the requests without a whole
// answer (counted as errors by the router, with no 5xx status), plus the
// responses of the classes and codes named.
func (e *errorStatuses) count(s judge.Sample) judge.Sample {
	if e == nil {
		return s
	}
	n := s.Errors - min(s.Errors, s.Status[5]) // failures without a 5xx status
	for class, on := range e.classes {
		if on {
			n += s.Status[class]
		}
	}
	for code, c := range s.Codes {
		if e.codes[code] && !e.classes[code/100] {
			n += c
		}
	}
	s.Errors = min(n, s.Requests)
	return s
}

// statusClasses are the classes a status-mix check compares: a larger
// share of any of them is worse; a larger share of 2xx is not.
var statusClasses = []int{3, 4, 5}

// classShare returns s with Errors the responses of class c.
func classShare(c int) func(judge.Sample) judge.Sample {
	return func(s judge.Sample) judge.Sample {
		s.Errors = min(s.Status[c], s.Requests)
		return s
	}
}

// withSessions applies f to s and to each of its session buckets.
func withSessions(f func(judge.Sample) judge.Sample, s judge.Sample) judge.Sample {
	out := f(s)
	if len(s.Sessions) > 0 {
		out.Sessions = make([]judge.Sample, len(s.Sessions))
		for i, b := range s.Sessions {
			out.Sessions[i] = f(b)
		}
	}
	return out
}

// part is one comparison inside a derived check, named for what it
// compares ("4xx", "route /users/:id").
type part struct {
	name  string
	check checker
}

// derivedCheck runs parts over one snapshot per look and folds their
// verdicts into one: it fails when any part fails (each part has its
// share of the check's α, so the check's false-fail probability stays
// within its α), passes when every part passes, and is inconclusive
// otherwise.
type derivedCheck struct {
	name   string
	src    Sources
	target Target
	cur    map[int]judge.Sample // this look's snapshot, read by the parts
	parts  []part
	// routes makes parts per route as routes appear (perRoute); nil for
	// a fixed set of parts.
	routes func(route string) checker
	known  map[string]bool
	split  string // how α is split, for the evidence
}

// derive returns Sources whose Samples are f of the check's current
// snapshot.
func (d *derivedCheck) derive(f func(judge.Sample) judge.Sample) Sources {
	return Sources{Replicas: d.src.Replicas, Samples: func(string) map[int]judge.Sample {
		out := make(map[int]judge.Sample, len(d.cur))
		for rev, s := range d.cur {
			out[rev] = f(s)
		}
		return out
	}}
}

// route returns the projection of a sample on one route.
func route(name string, then func(judge.Sample) judge.Sample) func(judge.Sample) judge.Sample {
	return func(s judge.Sample) judge.Sample {
		r, ok := s.Routes[name]
		if !ok {
			r = judge.Sample{Latency: judge.Histogram{Bounds: s.Latency.Bounds, Counts: make([]uint64, len(s.Latency.Counts))}}
		}
		// The session buckets are the revision's, not the route's: the
		// route's counts are corrected by the revision's design effect.
		r.Sessions = s.Sessions
		return then(r)
	}
}

func (d *derivedCheck) look(ctx context.Context, at time.Time) Result {
	d.cur = d.src.Samples(d.target.App)
	if d.routes != nil {
		var names []string
		for _, rev := range []int{d.target.Canary, d.target.Stable} {
			for name := range d.cur[rev].Routes {
				if !d.known[name] {
					d.known[name] = true
					names = append(names, name)
				}
			}
		}
		slices.Sort(names)
		for _, name := range names {
			d.parts = append(d.parts, part{name: "route " + name, check: d.routes(name)})
		}
	}
	var results []Result
	for _, p := range d.parts {
		r := p.check.look(ctx, at)
		r.Reason = p.name + ": " + r.Reason
		results = append(results, r)
	}
	return d.fold(results, at)
}

// fold makes the check's result from its parts'.
func (d *derivedCheck) fold(parts []Result, at time.Time) Result {
	if len(parts) == 0 {
		return result(d.name, at, judge.Inconclusive, "no requests yet", judge.Evidence{PValue: 1, Interval: [2]float64{math.Inf(-1), math.Inf(1)}})
	}
	worst, passed := 0, 0
	var canary, stable uint64
	for i, r := range parts {
		if r.Verdict == judge.Fail && parts[worst].Verdict != judge.Fail || r.Evidence.LogEValue > parts[worst].Evidence.LogEValue && (r.Verdict == judge.Fail) == (parts[worst].Verdict == judge.Fail) {
			worst = i
		}
		if r.Verdict == judge.Pass {
			passed++
		}
		canary += r.Evidence.CanarySamples
		stable += r.Evidence.StableSamples
	}
	out := parts[worst]
	out.Check = d.name
	out.At = at
	out.Evidence.Warnings = append(slices.Clone(out.Evidence.Warnings), d.split)
	switch {
	case out.Verdict == judge.Fail:
		out.Data = true
	case passed == len(parts):
		out.Verdict = judge.Pass
		out.Reason = fmt.Sprintf("all %d parts pass; closest to failing, %s", len(parts), out.Reason)
		out.Data = true
	default:
		out.Verdict = judge.Inconclusive
		out.Reason = fmt.Sprintf("%d of %d parts pass, none fails; closest to failing, %s", passed, len(parts), out.Reason)
		// A check with parts has data when the parts together have what
		// one comparison needs: a quiet route must not hold a step.
		out.Data = canary >= judge.MinRequests && stable >= judge.MinRequests
		if d.routes == nil {
			out.Data = !slices.ContainsFunc(parts, func(r Result) bool { return !r.Data })
		}
	}
	return out
}

func (d *derivedCheck) close() {}

// compileCompare compiles a compare check, derived or plain.
func compileCompare(t Target, src Sources, c manifest.Check, share float64) (checker, error) {
	cm := c.Compare
	metric := cm.Metric
	if metric == "statusMix" {
		metric = string(judge.ErrorRate)
	}
	m, err := judge.ParseMetric(metric)
	if cm.LatencyQuantile != 0 {
		m, err = judge.LatencyQuantile(cm.LatencyQuantile), nil
		if _, ok := m.Quantile(); !ok {
			err = fmt.Errorf("latencyQuantile %g: want a quantile between 0 and 1", cm.LatencyQuantile)
		}
	}
	if err != nil {
		return nil, err
	}
	inc, err := judge.ParseValue(m, cm.MaxIncrease)
	if err != nil {
		return nil, err
	}
	errs, err := compileErrorStatuses(cm.Errors)
	if err != nil {
		return nil, err
	}
	j := judge.Compare{Check: c.Name, Metric: m, MaxIncrease: inc}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	plain := errs == nil && cm.Metric != "statusMix" && !cm.PerRoute
	// mk makes one comparison, corrected for session affinity when the
	// router counts sessions.
	mk := func(src Sources, alpha float64) checker {
		return affinityCorrected(src, t, m, func(src Sources) checker {
			return &compareCheck{src: src, target: t, judge: j, alpha: alpha}
		})
	}
	if plain {
		return mk(src, share), nil
	}
	d := &derivedCheck{name: c.Name, src: src, target: t}
	// parts returns the comparisons of one sample projection: one per
	// status class for statusMix, else one.
	parts := func(d *derivedCheck, alpha float64, on func(judge.Sample) judge.Sample) []part {
		if cm.Metric != "statusMix" {
			return []part{{name: string(m), check: mk(d.derive(func(s judge.Sample) judge.Sample { return withSessions(errs.count, on(s)) }), alpha)}}
		}
		var out []part
		for _, class := range statusClasses {
			share := classShare(class)
			out = append(out, part{name: fmt.Sprintf("%dxx share", class),
				check: mk(d.derive(func(s judge.Sample) judge.Sample { return withSessions(share, on(s)) }), alpha/float64(len(statusClasses)))})
		}
		return out
	}
	identity := func(s judge.Sample) judge.Sample { return s }
	if !cm.PerRoute {
		d.parts = parts(d, share, identity)
		d.split = "one test per part"
		if cm.Metric == "statusMix" {
			d.split = fmt.Sprintf("α %.3g split over the 3xx, 4xx and 5xx shares (α/3 each)", share)
		}
		return d, nil
	}
	slots := max(1, t.Routes) + 1 // the routes counted apart, and other
	perRoute := share / float64(slots)
	d.known = map[string]bool{}
	d.split = fmt.Sprintf("α %.3g split over %d routes (%d counted apart and other): %.3g each", share, slots, slots-1, perRoute)
	d.routes = func(name string) checker {
		sub := &derivedCheck{name: c.Name, src: src, target: t}
		sub.parts = parts(d, perRoute, route(name, identity))
		if len(sub.parts) == 1 {
			return sub.parts[0].check
		}
		sub.split = "α/3 for each status class"
		return &routeParts{d: d, sub: sub}
	}
	return d, nil
}

// routeParts is a per-route status mix: the route's class comparisons,
// read from the parent's snapshot.
type routeParts struct {
	d   *derivedCheck
	sub *derivedCheck
}

func (r *routeParts) look(ctx context.Context, at time.Time) Result {
	var results []Result
	for _, p := range r.sub.parts {
		res := p.check.look(ctx, at)
		res.Reason = p.name + ": " + res.Reason
		results = append(results, res)
	}
	return r.sub.fold(results, at)
}

func (r *routeParts) close() {}
