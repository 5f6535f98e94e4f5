package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// point is one sample of one measure: its time since the start of the
// run, and its value.
type point struct {
	At time.Duration
	V  float64
}

// flatness is the verdict on one measure over a run: is it flat, or does
// it grow (a leak)? It compares the median of an early stretch right
// after warm-up with the median of the last stretch, and fits a line
// through the per-minute medians after warm-up.
type flatness struct {
	Name, Unit string
	// Early and Late are the medians of the samples in [warm-up, warm-up
	// + span) and [end - span, end]; NEarly and NLate their sample counts.
	Early, Late   float64
	NEarly, NLate int
	Span          time.Duration
	// Slope is the least-squares slope of the per-minute medians after
	// warm-up, per hour, with its 95 % confidence interval [Lo, Hi];
	// Minutes is the number of medians it was fitted through.
	Slope, Lo, Hi float64
	Minutes       int
	// Tolerance is the largest change between Early and Late (and the
	// largest growth the slope's interval may allow over the measured
	// stretch) still called flat.
	Tolerance float64
	Flat      bool
	Why       string
	// Bound is set when the measure was judged by a bound (Tolerance)
	// on its largest value (Peak) rather than by flatness.
	Bound    bool
	Peak     float64
	Warnings []string
}

// tolerance is what a measure may move and still be called flat: the
// larger of a share of its early median and an absolute floor (the
// noise of a Go heap between two collections, or a few connections
// opening and closing, is not a leak).
type tolerance struct {
	Share, Floor float64
}

// judgeFlat computes the verdict for the samples ps (in time order) of a
// run that lasted total, ignoring the first warmup, comparing stretches of
// span (shortened to a third of what is left after warm-up when the run is
// short).
func judgeFlat(name, unit string, ps []point, total, warmup, span time.Duration, tol tolerance) flatness {
	f := flatness{Name: name, Unit: unit}
	measured := total - warmup
	if measured <= 0 {
		f.Why = "the run ended within its warm-up: nothing to judge"
		return f
	}
	if span > measured/3 {
		span = measured / 3
		f.Warnings = append(f.Warnings, fmt.Sprintf("run too short for the planned stretches: compared %s at each end", span.Round(time.Second)))
	}
	f.Span = span
	var early, late []float64
	byMinute := map[int][]float64{}
	for _, p := range ps {
		if p.At < warmup {
			continue
		}
		if p.At < warmup+span {
			early = append(early, p.V)
		}
		if p.At >= total-span {
			late = append(late, p.V)
		}
		byMinute[int((p.At-warmup)/time.Minute)] = append(byMinute[int((p.At-warmup)/time.Minute)], p.V)
	}
	f.NEarly, f.NLate = len(early), len(late)
	if len(early) == 0 || len(late) == 0 {
		f.Why = "no samples in one of the stretches compared"
		return f
	}
	f.Early, f.Late = median(early), median(late)
	f.Tolerance = max(tol.Share*f.Early, tol.Floor)

	var xs, ys []float64
	for m, vs := range byMinute {
		// the minute's midpoint, in hours since warm-up
		xs = append(xs, (float64(m)+0.5)/60)
		ys = append(ys, median(vs))
	}
	f.Minutes = len(xs)
	f.Slope, f.Lo, f.Hi = slopeCI(xs, ys)
	if f.Minutes < 5 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("slope fitted through %d per-minute medians only", f.Minutes))
	}

	change := f.Late - f.Early
	hours := measured.Hours()
	switch {
	case math.Abs(change) > f.Tolerance:
		f.Why = fmt.Sprintf("the late median differs from the early one by %s, more than the tolerance %s", fmtVal(change, unit), fmtVal(f.Tolerance, unit))
	case f.Lo > 0 && f.Lo*hours > f.Tolerance:
		f.Why = fmt.Sprintf("the slope's interval lies above 0 and its lower end alone grows %s over the %s measured, more than the tolerance", fmtVal(f.Lo*hours, unit), measured.Round(time.Minute))
	default:
		f.Flat = true
		f.Why = fmt.Sprintf("late − early = %s, within ±%s", fmtVal(change, unit), fmtVal(f.Tolerance, unit))
		if f.Lo > 0 {
			f.Warnings = append(f.Warnings, "the slope's interval lies above 0: a slow growth, smaller than the tolerance over this run")
		}
	}
	return f
}

// judgeBound judges a measure that may grow up to a known limit (log
// folders up to history + 1) by its largest value after warmup. Early,
// Late and Slope are filled as by judgeFlat, for the table; Tolerance is
// the bound.
func judgeBound(name, unit string, ps []point, warmup time.Duration, bound float64) flatness {
	f := flatness{Name: name, Unit: unit, Tolerance: bound, Bound: true}
	var after []float64
	peak := math.Inf(-1)
	for _, p := range ps {
		if p.At >= warmup {
			after = append(after, p.V)
			peak = max(peak, p.V)
		}
	}
	if len(after) == 0 {
		f.Why = "no samples after warm-up"
		return f
	}
	f.Early, f.Late, f.NEarly, f.NLate = after[0], after[len(after)-1], 1, 1
	f.Peak = peak
	f.Flat = peak <= bound
	if f.Flat {
		f.Why = fmt.Sprintf("at most %s after warm-up, within the bound %s", fmtVal(peak, unit), fmtVal(bound, unit))
	} else {
		f.Why = fmt.Sprintf("reached %s after warm-up, beyond the bound %s", fmtVal(peak, unit), fmtVal(bound, unit))
	}
	return f
}

// median returns the median of vs (not changed), NaN for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// slopeCI fits y = a + b·x by ordinary least squares and returns b with
// its two-sided 95 % confidence interval from Student's t with n−2
// degrees of freedom. Fitting per-minute medians rather than every 5 s
// sample keeps the garbage collector's sawtooth, which makes neighbouring
// samples dependent, mostly out of the residuals; the interval still
// assumes independent residuals, so it is a guide, not a test. With fewer
// than 3 points the interval is unbounded.
func slopeCI(xs, ys []float64) (b, lo, hi float64) {
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0, math.Inf(-1), math.Inf(1)
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, math.Inf(-1), math.Inf(1)
	}
	b = sxy / sxx
	if len(xs) < 3 {
		return b, math.Inf(-1), math.Inf(1)
	}
	a := my - b*mx
	var sse float64
	for i := range xs {
		r := ys[i] - a - b*xs[i]
		sse += r * r
	}
	se := math.Sqrt(sse / (n - 2) / sxx)
	t := tQuantile975(len(xs) - 2)
	return b, b - t*se, b + t*se
}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom, by the Cornish–Fisher expansion around the normal quantile
// (Abramowitz & Stegun 26.7.5); within 0.003 of the exact value from 7
// degrees of freedom up, and exact table values below.
func tQuantile975(df int) float64 {
	small := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447}
	if df < len(small) {
		if df < 1 {
			return math.Inf(1)
		}
		return small[df]
	}
	const z = 1.959963984540054
	d := float64(df)
	z3, z5, z7 := z*z*z, math.Pow(z, 5), math.Pow(z, 7)
	return z + (z3+z)/(4*d) + (5*z5+16*z3+3*z)/(96*d*d) + (3*z7+19*z5+17*z3-15*z)/(384*d*d*d)
}

// fmtVal writes v in its unit: bytes as MiB, anything else as a plain
// number.
func fmtVal(v float64, unit string) string {
	if unit == "bytes" {
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
