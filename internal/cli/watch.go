package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// watchInterval is how often `status --watch` asks for the status.
const watchInterval = 250 * time.Millisecond

// watchStatus follows an app's rollout in progress, or waits for the next
// one to start, and returns once that rollout has ended (or ctx ends).
func watchStatus(ctx context.Context, e *Env, o *options, c *api.Client, st controller.AppStatus) error {
	w := &watcher{out: e.Stdout, json: o.output == "json", live: isTerminal(e.Stdout), now: time.Now}
	// before is the rollout that had already ended when the watch began:
	// the watch follows the next one.
	var before int64
	if r := st.Rollout; r != nil && strategy.Phase(r.Phase).Final() {
		before = r.ID
	}
	for {
		r := st.Rollout
		waiting := r == nil || r.ID == before
		w.show(st, waiting)
		if !waiting && strategy.Phase(r.Phase).Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchInterval):
		}
		var err error
		if st, err = c.App(ctx, o.args[0]); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// watcher prints an app's status as it changes. On a terminal (live) it
// redraws the whole status in place; piped, it prints the status once and
// then one timestamped line per fact that changed, so that a log or a
// grep reads it; with json, each changed status as one JSON document.
type watcher struct {
	out        io.Writer
	json, live bool
	now        func() time.Time

	shown   bool
	frame   string // the last status printed whole
	facts   []fact // the last facts printed
	waiting bool   // "waiting for a rollout" was said
}

func (w *watcher) show(st controller.AppStatus, waiting bool) {
	var b strings.Builder
	if w.json {
		printJSON(&b, st)
	} else {
		writeStatus(&b, st)
	}
	note := ""
	if waiting {
		note = fmt.Sprintf("waiting for a rollout of %s to start (Ctrl-C to stop)", st.Name)
	}
	switch {
	case w.json:
		if b.String() != w.frame {
			io.WriteString(w.out, b.String())
		}
	case w.live:
		if b.String() != w.frame || waiting != w.waiting {
			io.WriteString(w.out, "\x1b[H\x1b[2J"+b.String()) // home, clear screen
			if note != "" {
				fmt.Fprintf(w.out, "\n%s\n", note)
			}
		}
	case !w.shown:
		io.WriteString(w.out, b.String())
		if note != "" {
			fmt.Fprintf(w.out, "%s %s\n", w.stamp(), note)
		}
	default:
		w.lines(facts(st))
		if waiting && !w.waiting {
			fmt.Fprintf(w.out, "%s %s\n", w.stamp(), note)
		}
	}
	w.shown, w.frame, w.facts, w.waiting = true, b.String(), facts(st), waiting
}

func (w *watcher) stamp() string { return w.now().Local().Format(time.TimeOnly) }

// lines prints the facts that differ from the last ones printed, and the
// ones that are gone.
func (w *watcher) lines(now []fact) {
	stamp := w.stamp()
	for _, f := range now {
		i := slices.IndexFunc(w.facts, func(old fact) bool { return old.key == f.key })
		if i < 0 || w.facts[i].text != f.text {
			fmt.Fprintf(w.out, "%s %s: %s\n", stamp, f.key, f.text)
		}
	}
	for _, old := range w.facts {
		if !slices.ContainsFunc(now, func(f fact) bool { return f.key == old.key }) {
			fmt.Fprintf(w.out, "%s %s: gone\n", stamp, old.key)
		}
	}
}

// fact is one line of what status shows, by a stable key.
type fact struct{ key, text string }

// facts are what writeStatus shows, one fact per line or table row.
func facts(st controller.AppStatus) []fact {
	var out []fact
	add := func(key, format string, args ...any) { out = append(out, fact{key, fmt.Sprintf(format, args...)}) }
	if st.Stable > 0 {
		add("stable", "revision %d", st.Stable)
	} else {
		add("stable", "none yet")
	}
	if r := st.Rollout; r != nil {
		add("rollout", "#%d %s, %s", r.ID, describeRollout(r), rolloutPhase(r))
		if r.Reason != "" {
			add("reason", "%s (%s)", r.Reason, r.Trigger)
		}
		if r.Incident != "" {
			add("incident", "%s (`lastgood postmortem %s`)", r.Incident, r.Incident)
		}
		if d := r.Detail; d.Phase == strategy.Promoted && d.FromReplicas > 0 {
			add("window", "revision %d stays warm until %s", d.From, d.WarmUntil.Local().Format(time.TimeOnly))
		}
		out = append(out, rolloutNotes(r)...)
		for _, c := range r.Checks {
			add("check "+c.Check, "%s %s", c.Verdict, c.Reason)
		}
	}
	add("traffic", "%s", describeTraffic(st.Traffic))
	if st.Preview != "" {
		add("preview", "%s", st.Preview)
	}
	for _, r := range st.Replicas {
		text := fmt.Sprintf("revision %d %s", r.Revision, r.State)
		if r.Addr != "" {
			text += " on " + r.Addr
		}
		if r.Restarts > 0 {
			text += fmt.Sprintf(", %d restarts", r.Restarts)
		}
		if r.LastExit != "" {
			text += ", last exit " + r.LastExit
		}
		add("replica "+r.ID, "%s", text)
	}
	return out
}
