package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/lastgood/lastgood/internal/incident"
)

func init() {
	register(&command{name: "incidents", args: "[APP]", nargs: [2]int{0, 1},
		summary: "list the incidents (the evidence of every rollback and abort), newest first",
		details: `An incident is named after its app and the app's rollout number: web-2
is the incident of web's second rollout. An app lastgood never had is an
error (exit 1); a deleted app's incidents are kept.`,
		examples: []string{"lastgood incidents", "lastgood incidents web"}, run: runIncidents})
	register(&command{name: "postmortem", args: "INCIDENT [--format md|html|json]", nargs: [2]int{1, 1},
		summary:  "print an incident's post-mortem: timeline, evidence, figures, diff, logs",
		examples: []string{"lastgood postmortem web-2", "lastgood postmortem web-2 --format html > web-2.html"},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.format, "format", "md", "`FORMAT` of the report: md (Markdown), html (one self-contained page with charts) or json (incident.json)")
		},
		run: runPostmortem})
}

func runIncidents(ctx context.Context, e *Env, o *options) error {
	app := ""
	if len(o.args) > 0 {
		app = o.args[0]
	}
	list, err := o.client().Incidents(ctx, app)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.Stdout, "no incidents")
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDECIDED\tREVISIONS\tKIND\tTRIGGER\tDETECTED IN\tREASON")
	for _, in := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Decided.Local().Format("2006-01-02 15:04:05"),
			in.Arrow(), in.Kind, in.Trigger, dash(detected(in.TimeToDetectMs)), in.Reason)
	}
	return tw.Flush()
}

func detected(ms *int64) string {
	if ms == nil {
		return ""
	}
	return fmt.Sprintf("%.1fs", float64(*ms)/1000)
}

func runPostmortem(ctx context.Context, e *Env, o *options) error {
	format := o.format
	if o.output == "json" {
		format = "json"
	}
	if format != "md" && format != "html" && format != "json" {
		return invalid("--format must be md, html or json, got %q", format)
	}
	in, err := o.client().Incident(ctx, o.args[0])
	if err != nil {
		return err
	}
	switch format {
	case "json":
		return printJSON(e.Stdout, in)
	case "html":
		return incident.HTML(e.Stdout, in)
	}
	return incident.Markdown(e.Stdout, in)
}
