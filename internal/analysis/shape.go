package analysis

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// The traceShape check compares how the canary's tasks go about their
// work with how the stable's do: the distribution of each task's shape
// (the tool names its trace called, in order; otlp.Shape) over the
// stable's most common shapes and "any other". It fails when the share
// of tasks of some shape moves, up or down, by more than the tolerance
// (a share, default 0.1: ten points), and passes once no share has moved
// by that much.
//
// It is a family of the error rate's tests (rate.go): for each category
// j, "the task has shape j" is a Bernoulli trial on both revisions, and
// two one-sided tests ask whether its share rose by more than the
// tolerance, or fell by more (the same test on "the task does not have
// shape j"). The check's α is split evenly over the 2·(K+1) tests
// (Bonferroni), so the chance that any of them fails a canary whose
// shares are all within the tolerance stays at most the check's α; and
// that α is the check's share of analysis.alpha like any statistical
// check. A different order of steps moves the stable's main shape from
// most tasks to none and fails fast; a reorder in a few tasks moves the
// shares by a few points and passes.
//
// The categories are fixed once, at the first look at which the stable
// revision has minCapTasks tasks: its top shapeTop shapes, then "any
// other" (otlp.OtherShape collects the rest). Only tasks after that look
// are evidence, so the choice of categories does not depend on the data
// it judges.
type shapeCheck struct {
	src    Sources
	target Target
	check  string
	tol    float64
	alpha  float64
	cats   []string // nil: not fixed yet
	base   [2]map[string]uint64
	states []judge.RateState // two per category: rose, fell
}

// shapeTop is how many of the stable's shapes are categories of their
// own.
const shapeTop = 5

// defaultShapeTolerance is traceShape's tolerance when maxIncrease is
// not set: a shape's share may move by ten points.
const defaultShapeTolerance = 0.1

func compileShape(t Target, src Sources, name, maxIncrease string, share float64) (checker, error) {
	tol := defaultShapeTolerance
	if s := strings.TrimSpace(maxIncrease); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > 0 && f < 1) {
			return nil, fmt.Errorf("%s: %w: maxIncrease is how far a shape's share of tasks may move, a number between 0 and 1 such as 0.1, not %q", traceShape, judge.ErrBadValue, maxIncrease)
		}
		tol = f
	}
	return &shapeCheck{src: src, target: t, check: name, tol: tol, alpha: share}, nil
}

func (c *shapeCheck) shapes(rev int) map[string]uint64 {
	if c.src.Traces == nil {
		return nil
	}
	a, ok := c.src.Traces(c.target.App, rev)
	if !ok {
		return nil
	}
	return a.Shapes
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// topShapes returns the stable's most common shapes, most common first
// (ties by name), at most shapeTop, then otlp.OtherShape.
func topShapes(m map[string]uint64) []string {
	names := slices.Collect(maps.Keys(m))
	names = slices.DeleteFunc(names, func(s string) bool { return s == otlp.OtherShape })
	slices.SortFunc(names, func(a, b string) int {
		if d := cmp.Compare(m[b], m[a]); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return append(names[:min(len(names), shapeTop)], otlp.OtherShape)
}

// counts returns a revision's tasks since the base per category.
func (c *shapeCheck) counts(now, base map[string]uint64) (n uint64, per []uint64) {
	per = make([]uint64, len(c.cats))
	last := len(c.cats) - 1
	for shape, v := range now {
		d := v - min(v, base[shape])
		n += d
		i := slices.Index(c.cats[:last], shape)
		if i < 0 {
			i = last
		}
		per[i] += d
	}
	return n, per
}

func (c *shapeCheck) look(_ context.Context, at time.Time) Result {
	can, st := c.shapes(c.target.Canary), c.shapes(c.target.Stable)
	ev := judge.Evidence{Metric: traceShape, Unit: "share of tasks", PValue: 1, Alpha: c.alpha, Threshold: c.tol}
	if c.cats == nil {
		if n := total(st); n < minCapTasks {
			r := result(c.check, at, judge.Inconclusive, fmt.Sprintf("not yet conclusive: the stable revision has %d of the %d tasks that fix the shapes compared", n, minCapTasks), ev)
			if n == 0 {
				r.Reason = NoSpans(c.target.Stable) + " (the stable revision)"
			}
			if total(can) == 0 {
				r.Reason = NoSpans(c.target.Canary)
			}
			return r
		}
		c.cats = topShapes(st)
		c.base = [2]map[string]uint64{maps.Clone(can), maps.Clone(st)}
		c.states = make([]judge.RateState, 2*len(c.cats))
	}
	nc, pc := c.counts(can, c.base[0])
	ns, ps := c.counts(st, c.base[1])
	each := c.alpha / float64(len(c.states))
	j := judge.Compare{Check: c.check, Metric: judge.ErrorRate, MaxIncrease: c.tol}
	passed, trivial := 0, 0
	var worst judge.Result
	worstAt, worstLog := -1, math.Inf(-1)
	for i := range c.states {
		cat := i / 2
		xc, xs := pc[cat], ps[cat]
		if i%2 == 1 { // fell: the share of tasks not of this shape rose
			xc, xs = nc-xc, ns-xs
		}
		obs := judge.Observation{Canary: judge.Sample{Requests: nc, Errors: xc}, Stable: judge.Sample{Requests: ns, Errors: xs}}
		var jr judge.Result
		c.states[i], jr = j.Judge(c.states[i], obs, each)
		// A share at most the tolerance cannot fall by more than it, nor
		// one at least 1 − tolerance rise by more: the test's pass side has
		// no room to bet (its boundary is past 1), so once both revisions
		// have enough tasks it counts as passed.
		s := float64(ps[cat]) / float64(max(ns, 1))
		if i%2 == 1 && s <= c.tol || i%2 == 0 && s >= 1-c.tol {
			if jr.Verdict == judge.Inconclusive && nc >= judge.MinRequests && ns >= judge.MinRequests {
				jr.Verdict = judge.Pass
				trivial++
			}
		}
		if jr.Verdict == judge.Pass {
			passed++
		}
		if jr.Verdict == judge.Fail && (worst.Verdict != judge.Fail || c.states[i].MaxLogEFail > worstLog) ||
			worst.Verdict != judge.Fail && c.states[i].MaxLogEFail > worstLog {
			worst, worstAt, worstLog = jr, i, c.states[i].MaxLogEFail
		}
	}
	ev = worst.Evidence
	ev.Metric, ev.Unit, ev.Alpha, ev.Threshold = traceShape, "share of tasks", c.alpha, c.tol
	ev.Warnings = append(ev.Warnings, fmt.Sprintf("compares the shares of %d shapes (the stable's %d most common, then any other), each rise and fall at α/%d", len(c.cats), len(c.cats)-1, len(c.states)),
		"a shape is the tool names a task's trace called, in the order they started")
	if trivial > 0 {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("%d of the tests count as passed because the stable's share leaves no room for a change beyond the tolerance in their direction", trivial))
	}
	cat := worstAt / 2
	share := func(x, n uint64) string {
		if n == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.3g%% (%d/%d)", 100*float64(x)/float64(n), x, n)
	}
	fig := fmt.Sprintf("tasks of shape %q are %s of the canary's and %s of the stable's", c.cats[cat], share(pc[cat], nc), share(ps[cat], ns))
	r := Result{Result: judge.Result{Check: c.check, Verdict: judge.Inconclusive, Evidence: ev}, At: at}
	limit := math.Log(1 / each)
	switch {
	case worst.Verdict == judge.Fail:
		r.Verdict = judge.Fail
		r.Reason = fmt.Sprintf("traceShape: %s, a change of more than %.3g points: e-value %.3g ≥ %.3g (1/α over %d tests)",
			fig, 100*c.tol, math.Exp(worstLog), 1/each, len(c.states))
	case passed == len(c.states):
		r.Verdict = judge.Pass
		r.Reason = fmt.Sprintf("traceShape: every shape's share of tasks is within %.3g points of the stable's (%d shapes, %d canary and %d stable tasks)", 100*c.tol, len(c.cats), nc, ns)
	default:
		r.Reason = fmt.Sprintf("traceShape: not yet conclusive: %s (tolerance %.3g points), e-value %.3g of the %.3g needed to fail; %d of %d tests passed",
			fig, 100*c.tol, math.Exp(worstLog), math.Exp(limit), passed, len(c.states))
	}
	r.Data = r.Verdict != judge.Inconclusive || (nc >= judge.MinRequests && ns >= judge.MinRequests)
	if r.Verdict == judge.Inconclusive && total(can) == 0 {
		r.Reason = NoSpans(c.target.Canary)
	}
	return r
}

func (c *shapeCheck) close() {}
