package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

func init() {
	register(&command{name: "status", args: "APP [--watch]", nargs: [2]int{1, 1},
		summary: "show an app: its rollout, traffic and replicas (--watch: follow its next rollout to its end)",
		details: `With --watch, status follows the rollout in progress, or waits for the
next one to start, and exits when that rollout ends. On a terminal it
redraws the whole status; piped, it prints the status once and then one
timestamped line per change.`,
		examples: []string{"lastgood status web", "lastgood status web --watch", "lastgood status web -o json"},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.watch, "watch", false, "follow the rollout in progress (or wait for the next) until it ends")
		},
		run: runStatus})
	register(&command{name: "get apps", nargs: [2]int{0, 0}, summary: "list apps",
		examples: []string{"lastgood get apps", "lastgood get apps -o json"}, run: runGetApps})
	register(&command{name: "history", args: "APP", nargs: [2]int{1, 1}, summary: "list an app's revisions",
		details:  "A deleted app's history is kept and still listed.",
		examples: []string{"lastgood history web"}, run: runHistory})
	register(&command{name: "diff", args: "APP REV [REV]", nargs: [2]int{2, 3},
		summary:  "compare two revisions: manifest fields, and artifacts with a text diff of text ones (one REV: the stable revision against it)",
		examples: []string{"lastgood diff web 3", "lastgood diff web 2 3"}, run: runDiff})
	register(&command{name: "version", nargs: [2]int{0, 0}, summary: "print the client's and the server's version",
		examples: []string{"lastgood version"}, run: runVersion})
}

func runStatus(ctx context.Context, e *Env, o *options) error {
	c := o.client()
	st, err := c.App(ctx, o.args[0])
	if err != nil {
		return err
	}
	if o.watch {
		return watchStatus(ctx, e, o, c, st)
	}
	if o.output == "json" {
		return printJSON(e.Stdout, st)
	}
	writeStatus(e.Stdout, st)
	return nil
}

func writeStatus(w io.Writer, st controller.AppStatus) {
	fmt.Fprintf(w, "app:      %s (listening on %s)\n", st.Name, st.Listen)
	if st.Stable > 0 {
		fmt.Fprintf(w, "stable:   revision %d\n", st.Stable)
	} else {
		fmt.Fprintf(w, "stable:   none yet\n")
	}
	if r := st.Rollout; r != nil {
		fmt.Fprintf(w, "rollout:  #%d %s, %s\n", r.ID, describeRollout(r), rolloutPhase(r))
		if r.Reason != "" {
			fmt.Fprintf(w, "reason:   %s (%s)\n", r.Reason, r.Trigger)
		}
		if r.Incident != "" {
			fmt.Fprintf(w, "incident: %s (`lastgood postmortem %s`)\n", r.Incident, r.Incident)
		}
		if d := r.Detail; d.Phase == strategy.Promoted && d.FromReplicas > 0 {
			fmt.Fprintf(w, "window:   revision %d stays warm until %s%s\n", d.From, d.WarmUntil.Local().Format(time.TimeOnly), holdbackNote(r))
		}
		for _, n := range rolloutNotes(r) {
			fmt.Fprintf(w, "%-9s %s\n", n.key+":", n.text)
		}
	}
	fmt.Fprintf(w, "traffic:  %s\n", describeTraffic(st.Traffic))
	if u := st.Unrecorded; u != nil {
		if u.Applied != nil {
			fmt.Fprintf(w, "NOT RECORDED: traffic went back to revision %d at %s, but the store cannot record the %s yet (%d attempts): %s\n",
				u.Revision, u.Applied.Local().Format("15:04:05.000"), u.Phase, u.Attempts, u.Error)
		} else {
			fmt.Fprintf(w, "NOT RECORDED: the store cannot record the %s yet (%d attempts), and revision %d has no ready replica: %s\n",
				u.Phase, u.Attempts, u.Revision, u.Error)
		}
	}
	if st.ReadOnly != "" {
		fmt.Fprintf(w, "READ-ONLY: %s\n", st.ReadOnly)
	}
	if r := st.Rollout; r != nil && len(r.Checks) > 0 {
		fmt.Fprintln(w, "checks:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range r.Checks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Check, c.Verdict, c.Reason)
			if ev := evidenceLine(c.Result.Evidence, c.At); ev != "" {
				fmt.Fprintf(tw, "  \t\t%s\n", ev)
			}
		}
		tw.Flush()
	}
	if r := st.Rollout; r != nil && len(r.DefaultChecks) > 0 {
		fmt.Fprintf(w, "defaults: no analysis section: lastgood's default checks judge this rollout (%s, one α); `analysis: {checks: []}` turns them off\n",
			strings.Join(r.DefaultChecks, ", "))
	}
	if r := st.Rollout; r != nil && r.NoChecks {
		fmt.Fprintf(w, "checks:   none (no analysis checks): only the replicas' health judges this rollout (%s)\n", controller.HealthRules)
	}
	if st.Preview != "" {
		fmt.Fprintf(w, "preview:  %s\n", st.Preview)
	}
	if len(st.Replicas) == 0 {
		fmt.Fprintln(w, "replicas: none")
		return
	}
	fmt.Fprintln(w, "replicas:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tREVISION\tSTATE\tADDRESS\tRESTARTS\tLAST EXIT")
	for _, r := range st.Replicas {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%s\n", r.ID, r.Revision, r.State, r.Addr, r.Restarts, dash(r.LastExit))
	}
	tw.Flush()
}

// incidentNote names the incident of a rollout that has one, for the end
// of a line.
func incidentNote(r *controller.RolloutStatus) string {
	if r == nil || r.Incident == "" {
		return ""
	}
	return fmt.Sprintf(": incident %s (`lastgood postmortem %s`)", r.Incident, r.Incident)
}

func describeRollout(r *controller.RolloutStatus) string {
	if r.From == 0 {
		return fmt.Sprintf("first release of revision %d", r.To)
	}
	return fmt.Sprintf("revision %d → %d (%s)", r.From, r.To, r.Strategy)
}

func rolloutPhase(r *controller.RolloutStatus) string {
	d := r.Detail
	s := r.Phase
	switch {
	case d.Phase == strategy.Paused && d.PauseReason == strategy.PausePromote:
		s += ", waiting for `lastgood promote`"
	case d.Phase == strategy.Paused && d.PauseReason == strategy.PauseUnhealthy:
		s += fmt.Sprintf(", held: revision %d, its baseline, is unhealthy (`lastgood resume` goes on, `lastgood abort` returns)", d.From)
	case d.Phase == strategy.Paused:
		s += " by `lastgood pause`"
	case r.Steps > 0 && !d.Phase.Final():
		s += fmt.Sprintf(", step %d of %d, %d%% on revision %d", min(d.Step+1, r.Steps), r.Steps, d.Weight, d.To)
	}
	return s
}

// rolloutNotes are what a rollout's state says beyond its phase: the
// health of the revision a rollback returns to, and a canary step that
// waits with no traffic to its new revision.
func rolloutNotes(r *controller.RolloutStatus) []fact {
	d := r.Detail
	var out []fact
	if d.TargetTrouble != "" {
		text := fmt.Sprintf("revision %d is unhealthy: %s", d.From, d.TargetTrouble)
		if d.TargetBoth {
			text = strategy.Both + "; " + text
		}
		out = append(out, fact{"target", text})
	}
	if d.NoTraffic && !d.Phase.Final() {
		since := "since the step began"
		if d.TrafficAt.After(d.StepStarted) {
			since = "since " + d.TrafficAt.Local().Format(time.TimeOnly)
		}
		out = append(out, fact{"waiting", fmt.Sprintf("no traffic to revision %d %s; at the progress deadline rollback.onNoData decides", d.To, since)})
	}
	return out
}

func describeTraffic(rs []controller.Route) string {
	total := 0
	for _, r := range rs {
		if len(r.Backends) > 0 {
			total += r.Weight
		}
	}
	if total == 0 {
		return "no ready replica"
	}
	var parts []string
	for _, r := range rs {
		if len(r.Backends) == 0 || r.Weight == 0 {
			continue
		}
		part := fmt.Sprintf("revision %d %d%% (%d ready)", r.Revision, (r.Weight*100+total/2)/total, len(r.Backends))
		if r.Holdback {
			part += " held back"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runGetApps(ctx context.Context, e *Env, o *options) error {
	apps, err := o.client().Apps(ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, apps)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLISTEN\tSTABLE\tLATEST\tROLLOUT\tREADY")
	for _, a := range apps {
		rollout, ready := "-", 0
		if r := a.Rollout; r != nil {
			rollout = fmt.Sprintf("#%d %s", r.ID, r.Phase)
		}
		for _, r := range a.Replicas {
			if r.Ready {
				ready++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d/%d\n", a.Name, a.Listen, orNone(a.Stable), a.Latest, rollout, ready, len(a.Replicas))
	}
	return tw.Flush()
}

func orNone(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func runHistory(ctx context.Context, e *Env, o *options) error {
	c := o.client()
	app := o.args[0]
	st, err := c.App(ctx, app)
	deleted := false
	if se, ok := errors.AsType[*api.StatusError](err); ok && se.Code == http.StatusNotFound {
		// a deleted app: the controller no longer runs it, its history is
		// kept (and an app never applied fails just below)
		deleted, err = true, nil
	}
	if err != nil {
		return err
	}
	revs, err := c.Revisions(ctx, app)
	if err != nil {
		return err
	}
	rollouts, err := c.Rollouts(ctx, app)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, map[string]any{"app": app, "stable": st.Stable, "deleted": deleted, "revisions": revs, "rollouts": rollouts})
	}
	if deleted {
		fmt.Fprintf(e.Stdout, "%s is deleted; its history is kept (applied again, it goes on from revision %d)\n", app, latest(revs)+1)
	}
	outcome := map[int]string{}
	for i := len(rollouts) - 1; i >= 0; i-- { // oldest first, so the newest wins
		r := rollouts[i]
		outcome[r.To] = r.Phase
	}
	schemas, err := schemaVersions(ctx, c, app)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	header := "REVISION\tCREATED\tORIGIN\tDIGEST\tLAST ROLLOUT\tSOURCE"
	if len(schemas) > 0 {
		header = "REVISION\tCREATED\tORIGIN\tDIGEST\tLAST ROLLOUT\tSCHEMA\tSOURCE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range revs {
		mark := outcome[r.Number]
		if r.Number == st.Stable {
			mark += " (stable)"
		}
		origin := r.Origin
		if r.Origin == store.OriginUndo {
			origin = fmt.Sprintf("undo of %d", r.CopyOf)
		}
		schema := ""
		if len(schemas) > 0 {
			schema = dash(schemas[r.Number]) + "\t"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s%s\n", r.Number, r.Created.Local().Format("2006-01-02 15:04:05"),
			origin, short(r.Digest), strings.TrimSpace(dash(mark)), schema, r.Source)
	}
	return tw.Flush()
}

// schemaVersions is, for each revision of an app with a database section,
// the schema version its last rollout released it on, from the event
// log: after its migrations ran (database.migrated), or with nothing to
// migrate (database.unchanged); "migration failed" when they did not
// commit. Empty for an app without a database.
func schemaVersions(ctx context.Context, c *api.Client, app string) (map[int]string, error) {
	evs, err := c.Events(ctx, app, 0)
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, ev := range evs {
		var d struct {
			After   uint64 `json:"after"`
			Version uint64 `json:"version"`
		}
		switch ev.Type {
		case "database.migrated":
			json.Unmarshal(ev.Data, &d)
			out[ev.Revision] = strconv.FormatUint(d.After, 10)
		case "database.unchanged":
			json.Unmarshal(ev.Data, &d)
			out[ev.Revision] = strconv.FormatUint(d.Version, 10)
		case "database.migration-failed":
			out[ev.Revision] = "migration failed"
		}
	}
	return out, nil
}

func latest(revs []store.Revision) int {
	n := 0
	for _, r := range revs {
		n = max(n, r.Number)
	}
	return n
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// revArg reads a revision number argument.
func revArg(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, invalid("revision: want a number from 1, got %q", s)
	}
	return n, nil
}

func runDiff(ctx context.Context, e *Env, o *options) error {
	c := o.client()
	app := o.args[0]
	var from, to int
	var err error
	if to, err = revArg(o.args[len(o.args)-1]); err != nil {
		return err
	}
	if len(o.args) == 3 {
		if from, err = revArg(o.args[1]); err != nil {
			return err
		}
	} else {
		st, err := c.App(ctx, app)
		if err != nil {
			return err
		}
		if st.Stable == 0 {
			return invalid("%s has no stable revision yet to compare revision %d with; name two revisions: lastgood diff %s A B", app, to, app)
		}
		from = st.Stable
	}
	d, err := c.Diff(ctx, app, from, to)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, d)
	}
	writeDiff(e.Stdout, d)
	return nil
}

// writeDiff prints a comparison: changed manifest fields, then changed
// artifacts, each text artifact with its unified diff (all redacted by
// the server).
func writeDiff(w io.Writer, d api.DiffResult) {
	fmt.Fprintf(w, "--- revision %d\n+++ revision %d\n", d.From, d.To)
	if len(d.Changes) == 0 && len(d.Artifacts) == 0 {
		fmt.Fprintln(w, "no differences")
	}
	for _, ch := range d.Changes {
		fmt.Fprintf(w, "%s: %s → %s\n", ch.Field, orAbsent(ch.Old), orAbsent(ch.New))
	}
	for _, a := range d.Artifacts {
		fmt.Fprintf(w, "artifact %s: %s → %s", a.Path, orAbsent(a.Old), orAbsent(a.New))
		if a.Note != "" {
			fmt.Fprintf(w, " (%s)", a.Note)
		}
		fmt.Fprintln(w)
	}
	for _, a := range d.Artifacts {
		if a.Diff != "" {
			fmt.Fprintf(w, "\n%s", a.Diff)
		}
	}
}

func orAbsent(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func runVersion(ctx context.Context, e *Env, o *options) error {
	server, err := o.client().Version(ctx)
	if o.output == "json" {
		v := map[string]string{"client": Version}
		if err == nil {
			v["server"] = server
		}
		return printJSON(e.Stdout, v)
	}
	fmt.Fprintf(e.Stdout, "lastgood %s\n", Version)
	if err == nil {
		fmt.Fprintf(e.Stdout, "server   %s\n", server)
	}
	return nil
}

// holdbackNote says what the window keeps on the warm revision: the
// holdback that the compare checks go on judging against, or, without
// one, that they have no concurrent baseline.
func holdbackNote(r *controller.RolloutStatus) string {
	d := r.Detail
	if d.Holdback > 0 {
		return fmt.Sprintf(", with %d%% of traffic held back on it (compare checks keep judging both)", d.Holdback)
	}
	for _, c := range r.Checks {
		if c.Evidence.StableSamples > 0 || strings.HasPrefix(c.Evidence.Method.Name, "two-sample") {
			return "; no holdback (rollback.holdback 0): compare checks gather no evidence in the window"
		}
	}
	return ""
}

// evidenceLine prints the figures a statistical verdict rests on, as of
// the look it was taken at: samples per revision, the effect, the e-value
// against the 1/α it needs and the check's share of α. They change at
// every look (compare and threshold checks look every
// analysis.routerInterval); empty for checks that are not tests.
func evidenceLine(ev judge.Evidence, at time.Time) string {
	if ev.Alpha == 0 || ev.Method.Name == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "canary %d", ev.CanarySamples)
	if ev.StableSamples > 0 || strings.HasPrefix(ev.Method.Name, "two-sample") {
		fmt.Fprintf(&b, ", stable %d", ev.StableSamples)
	}
	b.WriteString(" samples; effect ")
	b.WriteString(formatEffect(ev))
	if strings.HasPrefix(ev.Method.Name, "two-sample") {
		fmt.Fprintf(&b, "; e-value %.3g of %.3g to fail", math.Exp(ev.LogEValue), 1/ev.Alpha)
	}
	fmt.Fprintf(&b, "; α share %.3g; at %s", ev.Alpha, at.Local().Format("15:04:05.0"))
	return b.String()
}

// formatEffect prints an effect in the metric's unit.
func formatEffect(ev judge.Evidence) string {
	switch ev.Unit {
	case "fraction":
		return fmt.Sprintf("%+.3g pp", 100*ev.Effect)
	case "s":
		return fmt.Sprintf("%+v", time.Duration(ev.Effect*float64(time.Second)).Round(10*time.Microsecond))
	}
	return fmt.Sprintf("%+.3g %s", ev.Effect, ev.Unit)
}
