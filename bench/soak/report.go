package main

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// report is everything one run saw.
type report struct {
	cfg                      config
	Started, Ended           time.Time
	LoadStart                time.Time
	Elapsed                  time.Duration // of the load
	LoadAvgStart, LoadAvgEnd string
	CPU                      *harness.CPUUse
	agg                      *aggregate
	rels                     releases
	Samples                  []sample
	LeftAfterStop            []int
	StopError                error
	RunError                 string
	flat                     []flatness // judged measures
	store                    flatness   // the store's size: reported, not judged
}

// measure is one sampled quantity and how much it may move.
type measure struct {
	name, unit string
	tol        tolerance
	get        func(sample) float64
	// bound, when set, replaces flatness: the measure is judged by its
	// largest value after warm-up, which must not exceed the bound.
	bound float64
}

// measures are the quantities judged for flatness. Tolerances: RSS and
// fds may move by 10 % of their early median or a floor (4 MiB: the Go
// heap between two collections; 4 fds: a few connections of the load or
// of a replica opening and closing); children by 2 (a rollout's extra
// replicas); log folders by 2 (a revision's folder lives until history
// prunes it). Log folders and
// /metrics revisions are judged by a bound instead: history + 1 (the
// stable, the one rolling out and the warm previous revision can outlive
// history until the next apply; docs/decisions.md).
var measures = []measure{
	{"RSS (VmRSS)", "bytes", tolerance{0.10, 4 << 20}, func(s sample) float64 { return float64(s.RSS) }, 0},
	{"open fds", "", tolerance{0.10, 4}, func(s sample) float64 { return float64(s.FDs) }, 0},
	{"OS threads", "", tolerance{0.10, 2}, func(s sample) float64 { return float64(s.Threads) }, 0},
	{"goroutines (go_goroutines)", "", tolerance{0.10, 10}, func(s sample) float64 { return float64(s.Goroutines) }, 0},
	{"child processes", "", tolerance{0, 2}, func(s sample) float64 { return float64(s.Children) }, 0},
	{"revision log folders", "", tolerance{}, func(s sample) float64 { return float64(s.LogDirs) }, history + 1},
	{"revisions on /metrics", "", tolerance{}, func(s sample) float64 { return float64(s.Revisions) }, history + 1},
}

func (r *report) points(get func(sample) float64) []point {
	var ps []point
	for _, s := range r.Samples {
		if v := get(s); v >= 0 {
			ps = append(ps, point{At: s.At, V: v})
		}
	}
	return ps
}

func (r *report) judge() {
	total := r.cfg.duration
	if n := len(r.Samples); n > 0 {
		total = r.Samples[n-1].At
	}
	r.flat = nil
	for _, m := range measures {
		ps := r.points(m.get)
		if len(ps) == 0 {
			continue // not exposed
		}
		if m.bound > 0 {
			r.flat = append(r.flat, judgeBound(m.name, m.unit, ps, r.cfg.warmup, m.bound))
			continue
		}
		r.flat = append(r.flat, judgeFlat(m.name, m.unit, ps, total, r.cfg.warmup, r.cfg.span, m.tol))
	}
	r.store = judgeFlat("store (state.db + WAL)", "bytes", r.points(func(s sample) float64 { return float64(s.StoreBytes) }),
		total, r.cfg.warmup, r.cfg.span, tolerance{0.10, 4 << 20})
}

func (r *report) verdict() string {
	if r.flat == nil {
		r.judge()
	}
	var grew []string
	for _, f := range r.flat {
		if !f.Flat {
			grew = append(grew, f.Name)
		}
	}
	if len(grew) == 0 {
		return "flat: " + strings.Join(names(r.flat), ", ")
	}
	return "NOT flat: " + strings.Join(grew, ", ")
}

func names(fs []flatness) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

// write writes RESULTS.md, soak.svg and samples.csv into dir.
func (r *report) write(dir string) error {
	r.judge()
	var csv bytes.Buffer
	csv.WriteString("seconds,rss_bytes,fds,threads,goroutines,children,zombies,log_dirs,store_bytes,done,failed,rate\n")
	for _, s := range r.Samples {
		fmt.Fprintf(&csv, "%.1f,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.1f\n", s.At.Seconds(), s.RSS, s.FDs, s.Threads, s.Goroutines,
			s.Children, s.Zombies, s.LogDirs, s.StoreBytes, s.Done, s.Failed, s.Rate)
	}
	if err := os.WriteFile(filepath.Join(dir, "samples.csv"), csv.Bytes(), 0o644); err != nil {
		return err
	}
	var svg bytes.Buffer
	var marks []mark
	for _, rel := range r.rels.all() {
		marks = append(marks, mark{At: rel.At, Bad: rel.Bad})
	}
	total := r.cfg.duration
	if n := len(r.Samples); n > 0 {
		total = max(total, r.Samples[n-1].At)
	}
	title := fmt.Sprintf("lastgood soak: %s at %.0f req/s offered, a release every %s (%s)", r.cfg.duration, r.cfg.rate, r.cfg.every, r.LoadStart.UTC().Format("2006-01-02 15:04 UTC"))
	err := writeSVG(&svg, title, total, r.cfg.warmup, []panel{
		{Title: "lastgood RSS (VmRSS), MiB", Scale: 1 << 20, Points: r.points(func(s sample) float64 { return float64(s.RSS) })},
		{Title: "lastgood open file descriptors", Scale: 1, Points: r.points(func(s sample) float64 { return float64(s.FDs) })},
		{Title: "achieved req/s (answers per 5 s sample)", Scale: 1, Points: r.points(func(s sample) float64 { return s.Rate })},
	}, marks)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.svg"), svg.Bytes(), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	r.markdown(&md)
	return os.WriteFile(filepath.Join(dir, "RESULTS.md"), md.Bytes(), 0o644)
}

// loadStats is what the load achieved.
type loadStats struct {
	done, failed            int64
	rate                    float64 // answers / elapsed
	p1, p50                 int64   // per-second answers, of the full seconds
	failedBad, failedOther  int64   // answered by a bad release's revision, otherwise
	otherSeconds            []int   // seconds with failures outside bad releases' minutes (first 10)
	otherByRevision         []string
	secondsBelow            int // full seconds with fewer than 95 % of the rate
	fullSeconds             int
	latP50, latP99, latP999 time.Duration
}

func (r *report) loadStats() loadStats {
	var q loadStats
	q.done, q.failed = r.agg.totals()
	if r.Elapsed > 0 {
		q.rate = float64(q.done) / r.Elapsed.Seconds()
	}
	secs := r.agg.seconds()
	full := int(r.Elapsed / time.Second) // the last, partial second left out
	var counts []int64
	rels := r.rels.all()
	for i, s := range secs {
		if i < full {
			counts = append(counts, s.Done)
			if float64(s.Done) < 0.95*r.cfg.rate {
				q.secondsBelow++
			}
		}
	}
	bad := map[int]bool{}
	for _, rel := range rels {
		if rel.Bad && rel.Revision != 0 {
			bad[rel.Revision] = true
		}
	}
	for rev, n := range r.agg.failedByRevision() {
		if bad[rev] {
			q.failedBad += n
		} else {
			q.failedOther += n
			q.otherByRevision = append(q.otherByRevision, fmt.Sprintf("%d from revision %d", n, rev))
		}
	}
	slices.Sort(q.otherByRevision)
	for i, s := range secs {
		if s.Failed > 0 && !inBad(rels, time.Duration(i)*time.Second, r.cfg.every) && len(q.otherSeconds) < 10 {
			q.otherSeconds = append(q.otherSeconds, i)
		}
	}
	q.fullSeconds = len(counts)
	slices.Sort(counts)
	if n := len(counts); n > 0 {
		q.p1, q.p50 = counts[n/100], counts[n/2]
	}
	q.latP50, q.latP99, q.latP999 = r.agg.latencyAt(0.5), r.agg.latencyAt(0.99), r.agg.latencyAt(0.999)
	return q
}

// inBad reports whether the second starting at t overlaps the time
// between a bad release's apply and the next release (or every after it,
// for the last).
func inBad(rels []release, t, every time.Duration) bool {
	for i, rel := range rels {
		end := rel.At + every
		if i+1 < len(rels) {
			end = rels[i+1].At
		}
		if rel.Bad && t+time.Second > rel.At && t < end {
			return true
		}
	}
	return false
}

func (r *report) markdown(w *bytes.Buffer) {
	q := r.loadStats()
	fmt.Fprintf(w, "# Soak: lastgood under steady load and a release every %s\n\n", r.cfg.every)
	fmt.Fprintf(w, "`go run ./bench/soak -duration %s -rate %.0f -every %s` (from the module root; `bench/soak/main.go` says what it does). "+
		"One run, %s to %s UTC, load average %s at the start and %s at the end (the machine is shared).\n\n",
		r.cfg.duration, r.cfg.rate, r.cfg.every, r.Started.UTC().Format("2006-01-02 15:04"), r.Ended.UTC().Format("15:04"), r.LoadAvgStart, r.LoadAvgEnd)
	fmt.Fprintf(w, "**Verdict: %s.**\n\n", r.verdict())
	if r.RunError != "" {
		fmt.Fprintf(w, "**The run stopped early:** %s\n\n", r.RunError)
	}
	fmt.Fprintf(w, "![RSS, fds and req/s over time](soak.svg)\n\n")

	fmt.Fprintf(w, "## What is measured\n\n")
	fmt.Fprintf(w, "Every %s, of the `lastgood serve` process only (not its replicas): `VmRSS` from /proc/PID/status (resident memory), "+
		"the entries of /proc/PID/fd (open descriptors: the API's, the router's client and backend connections, the store, log files), "+
		"`Threads` from /proc/PID/status, `go_goroutines` from its /metrics when that series is there, its live child processes "+
		"(replicas) and unreaped ones (zombies), the app's revision log folders under data/logs, and the size of state.db with its WAL. "+
		"Every sample is in [samples.csv](samples.csv).\n\n", r.cfg.sample)
	fmt.Fprintf(w, "**Flatness**, per measure, from the samples after a %s warm-up: the median of the first %s after warm-up "+
		"(early) against the median of the last %s (late); flat when they differ by at most the tolerance (the larger of a share of "+
		"the early median and a floor, listed). A least-squares line through the per-minute medians after warm-up gives a slope per hour "+
		"with a 95 %% interval (Student's t, n−2 df; it assumes independent residuals, so it is a guide); a measure whose interval lies "+
		"above 0 and whose lower end alone would grow more than the tolerance over the measured time is called growing too. "+
		"Log folders and revisions on /metrics grow by design until history prunes: they are judged by their largest value after warm-up against history + 1 = %d.\n\n",
		r.cfg.warmup, r.cfg.span, r.cfg.span, history+1)

	fmt.Fprintf(w, "| measure | early median | late median | late − early | tolerance | slope per hour [95 %% interval] | flat |\n|---|---|---|---|---|---|---|\n")
	for _, f := range append(slices.Clone(r.flat), r.store) {
		flat := map[bool]string{true: "yes", false: "**no**"}[f.Flat]
		if f.Bound {
			fmt.Fprintf(w, "| %s | %s (first after warm-up) | %s (last) | %s | bound: at most %s (largest seen %s) | — | %s |\n", f.Name,
				fmtVal(f.Early, f.Unit), fmtVal(f.Late, f.Unit), fmtVal(f.Late-f.Early, f.Unit), fmtVal(f.Tolerance, f.Unit), fmtVal(f.Peak, f.Unit), flat)
			continue
		}
		if f.Name == r.store.Name {
			flat = "not judged (grows by design: the event log is kept)"
		}
		fmt.Fprintf(w, "| %s | %s (n=%d) | %s (n=%d) | %s | ±%s | %s [%s, %s] (%d minutes) | %s |\n", f.Name,
			fmtVal(f.Early, f.Unit), f.NEarly, fmtVal(f.Late, f.Unit), f.NLate, fmtVal(f.Late-f.Early, f.Unit), fmtVal(f.Tolerance, f.Unit),
			fmtSlope(f.Slope, f.Unit), fmtSlope(f.Lo, f.Unit), fmtSlope(f.Hi, f.Unit), f.Minutes, flat)
	}
	w.WriteString("\n")
	for _, f := range r.flat {
		fmt.Fprintf(w, "- %s: %s.", f.Name, f.Why)
		for _, warn := range f.Warnings {
			fmt.Fprintf(w, " Warning: %s.", warn)
		}
		w.WriteString("\n")
	}
	if g := r.points(func(s sample) float64 { return float64(s.Goroutines) }); len(g) == 0 {
		w.WriteString("- goroutines: not measured — lastgood's /metrics has no `go_goroutines` (its registry holds no Go collector); OS threads stand in.\n")
	}
	if rel := r.rels.all(); len(rel) > 0 && len(r.Samples) > 0 {
		last := r.Samples[len(r.Samples)-1]
		fmt.Fprintf(w, "- store: %s at the end after %d releases.\n", fmtVal(float64(last.StoreBytes), "bytes"), len(rel))
	}
	zombies, lines := 0, 0
	for _, s := range r.Samples {
		zombies, lines = max(zombies, s.Zombies), max(lines, s.Series)
	}
	if n := len(r.Samples); n > 0 && lines > 0 {
		fmt.Fprintf(w, "- /metrics: %d sample lines at the end, at most %d (they follow the revisions on /metrics, bounded above).\n", r.Samples[n-1].Series, lines)
	}
	fmt.Fprintf(w, "- most unreaped children seen in one sample: %d; replicas alive after lastgood stopped at the end: %d", zombies, len(r.LeftAfterStop))
	if r.StopError != nil {
		fmt.Fprintf(w, " (stopping: %v)", r.StopError)
	}
	w.WriteString(".\n\n")

	fmt.Fprintf(w, "## Load\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| offered | %.0f req/s open loop (GET / through lastgood's router), %d workers, for %s |\n", r.cfg.rate, r.cfg.workers, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "| answered | %d, %.1f req/s on average |\n", q.done, q.rate)
	fmt.Fprintf(w, "| answers per second (by when due) | median %d, 1st percentile %d; %d of %d seconds below 95 %% of the offered rate |\n", q.p50, q.p1, q.secondsBelow, q.fullSeconds)
	fmt.Fprintf(w, "| failed | %d: %d answered by bad releases' revisions (expected: their faults reach clients until the rollback), %d otherwise |\n", q.failed, q.failedBad, q.failedOther)
	fmt.Fprintf(w, "| latency (due → answer, histogram bucket edges, ≤ 19 %% high) | p50 %s, p99 %s, p99.9 %s |\n",
		harness.FormatDuration(q.latP50), harness.FormatDuration(q.latP99), harness.FormatDuration(q.latP999))
	if r.CPU != nil {
		fmt.Fprintf(w, "| CPU over the load | lastgood %.2f cores, the load generator %.2f, the whole machine %.2f of %d busy |\n",
			r.CPU.Lastgood.Seconds()/r.Elapsed.Seconds(), r.CPU.Bench.Seconds()/r.Elapsed.Seconds(),
			r.CPU.Machine.Busy.Seconds()/r.Elapsed.Seconds(), numCPU())
	}
	w.WriteString("\n")
	switch {
	case q.rate >= 0.99*r.cfg.rate:
		fmt.Fprintf(w, "The machine sustained the offered rate (%.1f of %.0f req/s on average).\n\n", q.rate, r.cfg.rate)
	default:
		fmt.Fprintf(w, "**The machine did not sustain the offered rate**: %.1f of %.0f req/s on average (the load is open loop: requests due while every worker waited were sent late, and counted late in the latency).\n\n", q.rate, r.cfg.rate)
	}
	if q.failedOther > 0 {
		fmt.Fprintf(w, "Failures not answered by a bad release: %s (revision 0: no revision answered, such as a refused connection or a client timeout). "+
			"Seconds (since the load started, first 10) with failures outside bad releases' minutes: %v.\n\n", strings.Join(q.otherByRevision, ", "), q.otherSeconds)
	}
	if kinds := r.agg.errorKinds(); len(kinds) > 0 {
		w.WriteString("Failures by kind:\n\n")
		for _, k := range slices.Sorted(maps.Keys(kinds)) {
			fmt.Fprintf(w, "- %d × %s\n", kinds[k], strings.ReplaceAll(k, "|", "\\|"))
		}
		w.WriteString("\n")
	}

	fmt.Fprintf(w, "## Releases\n\nBlue-green, canary and rolling in turn; every %dth bad (blue-green: replicas exit 4 s after start; canary: 50 %% errors; rolling: never ready). "+
		"\"Ended\" is when the loop saw the rollout end; \"at the end\" is how it stood when the soak was over (after its window).\n\n", badEvery)
	w.WriteString("| # | at | strategy | bad | rollout | ended | took | at the end |\n|---|---|---|---|---|---|---|---|\n")
	counts := map[string]int{}
	for _, rel := range r.rels.all() {
		ended := strings.TrimSpace(rel.Phase + " " + rel.Trigger)
		if rel.Err != "" {
			ended = "error: " + strings.ReplaceAll(rel.Err, "\n", " ")
		}
		final := strings.TrimSpace(rel.Final + " " + rel.FinalTrigger)
		counts[fmt.Sprintf("%s release %s", map[bool]string{true: "bad", false: "good"}[rel.Bad], final)]++
		fmt.Fprintf(w, "| %d | %s | %s | %s | %d | %s | %s | %s |\n", rel.N, rel.At.Round(time.Second), rel.Kind,
			map[bool]string{true: "bad", false: ""}[rel.Bad], rel.Rollout, ended, rel.Took.Round(100*time.Millisecond), final)
	}
	w.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(w, "- %s: %d\n", k, counts[k])
	}
	w.WriteString("\n")
	harness.WriteMachine(w)
}

// fmtSlope writes a slope per hour in the measure's unit.
func fmtSlope(v float64, unit string) string {
	if math.IsInf(v, 0) {
		return "∞"
	}
	if unit == "bytes" {
		return fmt.Sprintf("%+.2f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%+.2f", v)
}

func numCPU() int { return runtime.NumCPU() }
