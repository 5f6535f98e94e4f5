package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/strategy"
)

// report is everything one run saw.
type report struct {
	cfg            config
	Rounds         []round
	Load           harness.LoadRun
	Started, Ended time.Time
	LoadAverage    string // at the start
	LeftAfterStop  []int  // replica pids alive after lastgood stopped at the end
	StopError      error
	RunError       string // why the run stopped early, "" when it did not
}

// requests is what the load saw, told apart by when each request was in
// flight.
type requests struct {
	total, ok int
	// down failed while in flight at some time when no lastgood had the
	// app's port bound (SIGKILL → the new process bound it); bad failed
	// otherwise during the round of a bad release (its replicas exit under
	// requests); flap failed after a restart while replicas' readiness
	// probes timed out (a replica.unready event within flapMargin of it);
	// up failed otherwise after a restart, from the port being bound to
	// the end of the round, which must not happen; other failed at any
	// other time (a rollout before the kill): lastgood's, not a restart's.
	down, bad, flap, up, other           int
	upSamples, flapSamples, otherSamples []harness.Response
	// perRound are the down failures of each round; hold is, per round,
	// the time from the port being bound again to the first 2xx answer.
	perRound map[int]int
	hold     map[int]time.Duration
}

func (r *report) requests() requests {
	q := requests{perRound: map[int]int{}, hold: map[int]time.Duration{}}
	for _, res := range r.Load.Responses {
		q.total++
		sent, done := r.Load.Time(res.Sent), r.Load.Time(res.Done)
		if !res.Failed() {
			q.ok++
			for _, rd := range r.Rounds {
				if !done.Before(rd.Bound) {
					if h, ok := q.hold[rd.N]; !ok || done.Sub(rd.Bound) < h {
						q.hold[rd.N] = done.Sub(rd.Bound)
					}
				}
			}
			continue
		}
		n := downIn(r.Rounds, sent, done)
		if n > 0 {
			q.down++
			q.perRound[n]++
			continue
		}
		switch {
		case badIn(r.Rounds, sent):
			q.bad++
		case afterRestart(r.Rounds, sent) && flapping(r.Rounds, sent, done):
			q.flap++
			if len(q.flapSamples) < 5 {
				q.flapSamples = append(q.flapSamples, res)
			}
		case afterRestart(r.Rounds, sent):
			q.up++
			if len(q.upSamples) < 10 {
				q.upSamples = append(q.upSamples, res)
			}
		default:
			q.other++
			if len(q.otherSamples) < 10 {
				q.otherSamples = append(q.otherSamples, res)
			}
		}
	}
	return q
}

// downIn returns the round during whose down time a request sent at sent
// and answered at done was in flight, 0 for none.
func downIn(rs []round, sent, done time.Time) int {
	for _, rd := range rs {
		if !rd.Killed.IsZero() && !done.Before(rd.Killed) && sent.Before(rd.Bound) {
			return rd.N
		}
	}
	return 0
}

// badIn reports whether a request sent at sent went out during the round
// of a bad release, from its apply to the end of its window.
func badIn(rs []round, sent time.Time) bool {
	for _, rd := range rs {
		if rd.Bad && !sent.Before(rd.Applied) && sent.Before(rd.Settled) {
			return true
		}
	}
	return false
}

// afterRestart reports whether a request sent at sent went out after a
// restart: from the new process binding the port to the end of its round.
func afterRestart(rs []round, sent time.Time) bool {
	for _, rd := range rs {
		if !rd.Bound.IsZero() && !sent.Before(rd.Bound) && sent.Before(rd.Settled) {
			return true
		}
	}
	return false
}

// flapMargin is how close to a replica.unready event a failed request
// counts as failed by the probes' verdict.
const flapMargin = time.Second

// flapping reports whether a replica went unready within flapMargin of a
// request in flight from sent to done.
func flapping(rs []round, sent, done time.Time) bool {
	for _, rd := range rs {
		for _, u := range rd.Unready {
			if u.After(sent.Add(-flapMargin)) && u.Before(done.Add(flapMargin)) {
				return true
			}
		}
	}
	return false
}

// problems counts what must be zero.
type problems struct{ wrong, orphans, strays, audits int }

func (r *report) problems() problems {
	var p problems
	for _, rd := range r.Rounds {
		if rd.Wrong != "" {
			p.wrong++
		}
		p.orphans += len(rd.Orphans)
		p.strays += len(rd.Strays)
		if rd.AuditErr != "" || !rd.Audit.OK() || rd.Audit.Events == 0 {
			p.audits++
		}
	}
	return p
}

func (r *report) clean() bool {
	p := r.problems()
	return p == problems{} && r.requests().up == 0 && len(r.LeftAfterStop) == 0 && r.StopError == nil && r.RunError == ""
}

func (r *report) verdict() string {
	p, q := r.problems(), r.requests()
	return fmt.Sprintf("%d rounds: %d wrong decisions, %d orphans, %d strays, %d unclean audits, %d requests failed after a restart while lastgood was up",
		len(r.Rounds), p.wrong, p.orphans, p.strays, p.audits, q.up)
}

// writeTo writes the report to path, or to stdout when path is "".
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
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "# kill -9 during rollouts\n\n")
	fmt.Fprintf(w, "`go run ./bench/killnine -rounds %d -rate %g -window %s -seed %d` on %s, %s in all; load average %s at the start, %s at the end.\n\n",
		r.cfg.rounds, r.cfg.rate, r.cfg.window, r.cfg.seed, r.Started.UTC().Format("2006-01-02 15:04 MST"),
		r.Ended.Sub(r.Started).Round(time.Second), r.LoadAverage, harness.LoadAverage())
	if r.RunError != "" {
		fmt.Fprintf(w, "**The run stopped early:** %s\n\n", r.RunError)
	}
	harness.WriteMachine(w)
	r.writeSummary(w)
	r.writeDecisions(w)
	r.writeRounds(w)
}

func (r *report) writeSummary(w io.Writer) {
	p, q := r.problems(), r.requests()
	var downs, holds []time.Duration
	for _, rd := range r.Rounds {
		if !rd.Bound.IsZero() {
			downs = append(downs, rd.Bound.Sub(rd.Killed))
		}
		if h, ok := q.hold[rd.N]; ok {
			holds = append(holds, h)
		}
	}
	d, h := harness.Percentiles(downs), harness.Percentiles(holds)
	fmt.Fprintf(w, "## Summary\n\n| | result | goal |\n|---|---|---|\n")
	fmt.Fprintf(w, "| kills (SIGKILL to lastgood only) | %d: %s | 100, during rollouts and inside windows |\n", len(r.Rounds), r.landed())
	fmt.Fprintf(w, "| replicas of a killed lastgood alive 5 s after it | %d | 0 |\n", p.orphans)
	fmt.Fprintf(w, "| replicas after a restart that are not the new lastgood's children | %d | 0 |\n", p.strays)
	fmt.Fprintf(w, "| replicas alive after the final stop | %d | 0 |\n", len(r.LeftAfterStop))
	fmt.Fprintf(w, "| wrong decisions | %d | 0 |\n", p.wrong)
	fmt.Fprintf(w, "| `lastgood audit verify` not clean (after each restart and rollout) | %d of %d | 0 |\n", p.audits, len(r.Rounds))
	fmt.Fprintf(w, "| requests (%g/s, keep-alive) | %d, %d answered 200 | — |\n", r.cfg.rate, q.total, q.ok)
	fmt.Fprintf(w, "| failed while no lastgood had the port (the process was down) | %d | — |\n", q.down)
	fmt.Fprintf(w, "| failed while a bad release's replicas exited (its round, lastgood up) | %d | — |\n", q.bad)
	fmt.Fprintf(w, "| failed after a restart while replicas' readiness probes timed out (replica.unready within %s) | %d | — |\n", flapMargin, q.flap)
	fmt.Fprintf(w, "| failed after a restart otherwise (port bound → end of the round), good releases | %d | 0 |\n", q.up)
	fmt.Fprintf(w, "| failed at other times, lastgood up (rollouts before the kill) | %d | — |\n", q.other)
	fmt.Fprintf(w, "| good releases rolled back before the kill (not decided by a restart) | %d | — |\n", r.beforeKill())
	fmt.Fprintf(w, "| down: SIGKILL → new process has the app's port, p50 / p90 / max | %s / %s / %s | — |\n", ms(d.At(0.5)), ms(d.At(0.9)), ms(d.Max()))
	fmt.Fprintf(w, "| port bound → first 200 (clients held in the backlog), p50 / p90 / max | %s / %s / %s | — |\n\n", ms(h.At(0.5)), ms(h.At(0.9)), ms(h.Max()))
	for _, res := range q.upSamples {
		fmt.Fprintf(w, "- failed after a restart: at %s (%s): status %d %s\n", res.Done.Round(time.Millisecond), res.Phase, res.Status, res.Err)
	}
	for _, res := range q.flapSamples {
		fmt.Fprintf(w, "- failed after a restart, replicas unready: at %s (%s): status %d %s\n", res.Done.Round(time.Millisecond), res.Phase, res.Status, res.Err)
	}
	for _, res := range q.otherSamples {
		fmt.Fprintf(w, "- failed at another time: at %s (%s): status %d %s\n", res.Done.Round(time.Millisecond), res.Phase, res.Status, res.Err)
	}
	for _, rd := range r.Rounds {
		switch {
		case rd.Wrong != "":
			fmt.Fprintf(w, "- round %d (%s): wrong: %s\n", rd.N, rd.Kind, rd.Wrong)
		case !rd.Bad && rd.Before == string(strategy.RolledBack):
			fmt.Fprintf(w, "- round %d (%s): rolled back before the kill by %s: %s\n", rd.N, rd.Kind, rd.Trigger, rd.Reason)
		}
	}
	if r.StopError != nil {
		fmt.Fprintf(w, "- the final stop: %v\n", r.StopError)
	}
	fmt.Fprintln(w)
}

// beforeKill counts the good releases that had been rolled back when the
// kill came: decisions of the rollout, not of a restart.
func (r *report) beforeKill() int {
	n := 0
	for _, rd := range r.Rounds {
		if !rd.Bad && rd.Before == string(strategy.RolledBack) {
			n++
		}
	}
	return n
}

// landed counts where the kills landed.
func (r *report) landed() string {
	n := map[string]int{}
	for _, rd := range r.Rounds {
		n[rd.Before]++
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		out = append(out, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(out, ", ")
}

// writeDecisions tabulates how rollouts ended by where the kill landed.
func (r *report) writeDecisions(w io.Writer) {
	type key struct{ kind, before, outcome string }
	n := map[key]int{}
	for _, rd := range r.Rounds {
		kind := rd.Kind
		if rd.Bad {
			kind += " (bad)"
		}
		outcome := rd.Phase
		if rd.Trigger != "" {
			outcome += " by " + rd.Trigger
		}
		if rd.InWindow {
			outcome += ", inside the window"
		}
		n[key{kind, rd.Before, outcome}]++
	}
	keys := slices.SortedFunc(maps.Keys(n), func(a, b key) int {
		return strings.Compare(a.kind+"\x00"+a.before+"\x00"+a.outcome, b.kind+"\x00"+b.before+"\x00"+b.outcome)
	})
	fmt.Fprintf(w, "## Decisions\n\nWhere the kill landed (the rollout's state at the last look before it) and how the rollout ended after the restart and its window.\n\n")
	fmt.Fprintf(w, "| release | killed while | ended | rounds |\n|---|---|---|---|\n")
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %s | %s | %d |\n", k.kind, k.before, k.outcome, n[k])
	}
	fmt.Fprintln(w)
}

func (r *report) writeRounds(w io.Writer) {
	q := r.requests()
	fmt.Fprintf(w, "## Rounds\n\n| # | release | aimed at | delay | killed while | down | failed while down | → first 200 | restart decided | ended | right |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rd := range r.Rounds {
		kind := rd.Kind
		if rd.Bad {
			kind += " (bad)"
		}
		ended := rd.Phase
		if rd.Trigger != "" {
			ended += " (" + rd.Trigger + ")"
		}
		right := "yes"
		if rd.Wrong != "" {
			right = "**no**"
		}
		hold := "—"
		if h, ok := q.hold[rd.N]; ok {
			hold = ms(h)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", rd.N, kind, rd.Aim, ms(rd.Delay), rd.Before,
			ms(rd.Bound.Sub(rd.Killed)), q.perRound[rd.N], hold, decided(rd.Recovered), ended, right)
	}
	fmt.Fprintln(w)
}

// decided shortens a controller.recovered message to its decision.
func decided(msg string) string {
	switch {
	case msg == "":
		return "nothing"
	case strings.Contains(msg, "stays promoted"):
		return "stays promoted, grace"
	case strings.Contains(msg, "rolling back"):
		return "roll back"
	case strings.Contains(msg, "resuming"):
		return "resume"
	}
	return msg
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
