package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/bench/internal/stats"
)

// report is everything one run measured.
type report struct {
	cfg            config
	Releases       []release
	Loads          []namedRun
	Started, Ended time.Time
	RunError       string
}

type namedRun struct {
	app string
	run harness.LoadRun
}

func (r *report) writeTo(path string) error {
	if path == "" {
		r.write(os.Stdout)
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.write(f)
	return f.Close()
}

func (r *report) write(w io.Writer) {
	r.count()
	slices.SortFunc(r.Releases, func(a, b release) int { return a.Applied.Compare(b.Applied) })
	fmt.Fprintf(w, "# A/A releases through the real binary, with load changes after each promotion\n\n")
	fmt.Fprintf(w, "`go run ./bench/window/releases -rounds %d -rate %g -window %s -seed %d -latency-tolerance %s -probe-period %s` on %s, %s in all.\n\n",
		r.cfg.rounds, r.cfg.rate, r.cfg.window, r.cfg.seed, r.cfg.latency, r.cfg.probe, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Ended.Sub(r.Started).Round(time.Second))
	if r.RunError != "" {
		fmt.Fprintf(w, "**The run stopped early:** %s\n\n", r.RunError)
	}
	harness.WriteMachine(w)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "Load average at the end: %s (the machine is shared).\n\n", strings.TrimSpace(string(load)))
	fmt.Fprintf(w, "## Setup\n\nOne `lastgood serve`; two apps (a, b) of the sample app, 2 replicas each, failing 1%% of requests, readiness on /healthz every %s (timeout as long, 3 failures in a row), under an open-loop load of %g req/s each ", r.cfg.probe, r.cfg.rate)
	fmt.Fprintf(w, "(bench/internal/harness: every request due at its time, sent by whichever of 32 workers is free); a third app, the neighbour, under 50 req/s. ")
	fmt.Fprintf(w, "Each release is a new revision identical to the last (a ROUND value and the error generator's seed differ), a canary of 10%% then 50%%, 30 s analyze steps each, ")
	fmt.Fprintf(w, "judged by `errorRate` (maxIncrease 0.01) and `latencyP99` (maxIncrease %s) compare checks sharing α = 0.01, with rollback.window %s and the default rollback.holdback. ", r.cfg.latency, r.cfg.window)
	fmt.Fprintf(w, "Inside each window, each at a random moment: the app's load triples for 20 s; two processes spin on the CPU for 30 s; the neighbour's load rises to 500 req/s for 30 s. ")
	fmt.Fprintf(w, "The two apps' releases run side by side, so each one's window also sees the other's rollout and episodes.\n\n")

	n, rolled, inWindow := len(r.Releases), 0, 0
	for _, rel := range r.Releases {
		if rel.falseRollback() {
			rolled++
			if rel.InWindow {
				inWindow++
			}
		}
	}
	fmt.Fprintf(w, "## Result\n\n| releases | rolled back (95%% CI) | of them inside the window |\n|---|---|---|\n| %d | %s | %d |\n\n", n, stats.Share(rolled, n), inWindow)
	fmt.Fprintf(w, "## Every release\n\n| app | round | revision | outcome | holdback | answers after promotion: previous / promoted (failed) | episodes in the window (start after promotion) | reason |\n|---|---|---|---|---|---|---|---|\n")
	for _, rel := range r.Releases {
		var eps []string
		for _, e := range rel.Episodes {
			eps = append(eps, fmt.Sprintf("%s at %.0f s", e.What, e.Start.Sub(rel.Promoted).Seconds()))
		}
		prev, prom := rel.From, rel.Revision
		answers := "—"
		if !rel.Promoted.IsZero() {
			answers = fmt.Sprintf("%d (%d) / %d (%d)", rel.Served[prev], rel.Failed[prev], rel.Served[prom], rel.Failed[prom])
		}
		outcome := rel.Phase
		if rel.InWindow {
			outcome += " in the window"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d%% | %s | %s | %s |\n", rel.App, rel.Round, rel.Revision, outcome, rel.Holdback, answers,
			strings.Join(eps, "; "), strings.ReplaceAll(rel.Reason, "|", "\\\\|"))
	}
	fmt.Fprintln(w)
}

// count fills each release's answers per revision between its promotion
// and its end, from its app's load.
func (r *report) count() {
	for i := range r.Releases {
		rel := &r.Releases[i]
		rel.Served, rel.Failed = map[int]int{}, map[int]int{}
		if rel.Promoted.IsZero() {
			continue
		}
		for _, l := range r.Loads {
			if l.app != rel.App {
				continue
			}
			for _, res := range l.run.Responses {
				at := l.run.Time(res.Done)
				if at.Before(rel.Promoted) || at.After(rel.Ended) {
					continue
				}
				rel.Served[res.Revision]++
				if res.Failed() {
					rel.Failed[res.Revision]++
				}
			}
		}
	}
}
