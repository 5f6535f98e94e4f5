package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/store"
)

func init() {
	register(&command{name: "flags", args: "APP list | set KEY --variant V | off KEY | on KEY | history KEY | undo KEY [--to-revision N]",
		nargs:   [2]int{2, 3},
		summary: "list an app's feature flags, or change one (each change is a new flag revision)",
		details: `Flags are declared in the manifest's flags: section (docs/flags.md) and
served over OFREP. Every change is a new, numbered, immutable revision of
the flag, recorded in the event log with who asked.

  list           each flag: its latest revision and what it serves
  set KEY        pin the flag to --variant V: every evaluation gets it
  off KEY        the kill switch: every evaluation gets the default variant
  on KEY         undo off and set: the flag evaluates as declared again
  history KEY    every revision of the flag
  undo KEY       a new revision with the content of the one before the
                 latest (or of --to-revision N)`,
		examples: []string{
			"lastgood flags web list",
			"lastgood flags web off new-checkout",
			"lastgood flags web set new-checkout --variant on",
			"lastgood flags web history new-checkout",
			"lastgood flags web undo new-checkout",
		},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.variant, "variant", "", "set: the variant `V` every evaluation gets")
			fs.Var(&revisionFlag{n: &o.toRevision, set: &o.toRevisionSet}, "to-revision", "undo: the flag revision `N` whose content to return to")
		},
		run: runFlags,
	})
}

func runFlags(ctx context.Context, e *Env, o *options) error {
	app, sub := o.args[0], o.args[1]
	key := ""
	if len(o.args) == 3 {
		key = o.args[2]
	}
	needKey := map[string]bool{"set": true, "off": true, "on": true, "history": true, "undo": true}
	switch {
	case sub == "list" && key != "":
		return invalid("flags %s list takes no KEY", app)
	case sub == "list":
	case !needKey[sub]:
		return invalid("flags: unknown command %q; want list, set, off, on, history or undo", sub)
	case key == "":
		return invalid("flags %s %s: KEY is required", app, sub)
	}
	if o.variant != "" && sub != "set" {
		return invalid("--variant is for flags set")
	}
	if o.toRevisionSet && sub != "undo" {
		return invalid("--to-revision is for flags undo")
	}
	if o.toRevisionSet && o.toRevision < 1 {
		return invalid("--to-revision: want a flag revision number from 1, got %d", o.toRevision)
	}
	c := o.client()
	switch sub {
	case "list":
		revs, err := c.Flags(ctx, app)
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(e.Stdout, revs)
		}
		return printFlags(e, revs, false)
	case "history":
		revs, err := c.FlagHistory(ctx, app, key)
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(e.Stdout, revs)
		}
		return printFlags(e, revs, true)
	case "set":
		if o.variant == "" {
			return invalid("flags %s set %s: --variant V is required", app, key)
		}
	}
	res, err := c.Flag(ctx, app, key, sub, api.FlagRequest{Variant: o.variant, ToRevision: o.toRevision})
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, res)
	}
	fmt.Fprintln(e.Stdout, res.Message)
	return nil
}

func printFlags(e *Env, revs []store.FlagRevision, history bool) error {
	if len(revs) == 0 {
		fmt.Fprintln(e.Stdout, "no flags")
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	if history {
		fmt.Fprintln(tw, "REVISION\tORIGIN\tBY\tCREATED\tSERVES")
	} else {
		fmt.Fprintln(tw, "KEY\tREVISION\tTYPE\tDEFAULT\tSERVES")
	}
	for _, fr := range revs {
		s, err := controller.SpecOf(fr)
		if err != nil {
			return err
		}
		if history {
			origin := fr.Origin
			if fr.CopyOf > 0 {
				origin += fmt.Sprintf(" of %d", fr.CopyOf)
			}
			by := fr.Actor
			if by == "" {
				by = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", fr.Number, origin, by, fr.Created.Local().Format("2006-01-02 15:04:05"), serves(s))
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", fr.Key, fr.Number, s.Flag.Type(), s.Flag.Default, serves(s))
		}
	}
	return tw.Flush()
}

// serves says in a few words what a flag revision serves.
func serves(s *flags.Spec) string {
	f := &s.Flag
	var parts []string
	switch {
	case s.Off:
		return "off (default " + f.Default + ")"
	case s.Pin != "":
		return "pinned to " + s.Pin
	}
	if len(f.Rules) > 0 {
		parts = append(parts, fmt.Sprintf("%d rules", len(f.Rules)))
	}
	switch {
	case len(f.Split) > 0:
		parts = append(parts, "split")
	case f.Rollout != nil && s.Step > 0 && s.Step <= len(f.Rollout.Steps):
		parts = append(parts, fmt.Sprintf("%s to %d%%", f.Rollout.Variant, f.Rollout.Steps[s.Step-1]))
	}
	if len(parts) == 0 {
		return f.Default
	}
	return strings.Join(parts, ", ") + ", else " + f.Default
}
