package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/lastgood/lastgood/internal/api"
)

func init() {
	simple := map[string]string{
		"abort":  "return all traffic to the stable revision and end the rollout",
		"pause":  "hold the rollout where it is",
		"resume": "continue a paused rollout",
	}
	for verb, summary := range simple {
		register(&command{name: verb, args: "APP", summary: summary, nargs: [2]int{1, 1},
			examples: []string{"lastgood " + verb + " web"},
			run: func(ctx context.Context, e *Env, o *options) error {
				return runAction(ctx, e, o, verb, api.ActionRequest{})
			}})
	}
	register(&command{name: "promote", args: "APP [--full]", nargs: [2]int{1, 1},
		examples: []string{"lastgood promote web", "lastgood promote web --full"},
		summary:  "skip the current wait of the rollout (--full: every remaining step)",
		flags:    func(fs *flag.FlagSet, o *options) { fs.BoolVar(&o.full, "full", false, "skip every remaining step") },
		run: func(ctx context.Context, e *Env, o *options) error {
			return runAction(ctx, e, o, "promote", api.ActionRequest{Full: o.full})
		}})
	register(&command{name: "undo", args: "APP [--to-revision N]", nargs: [2]int{1, 1},
		examples: []string{"lastgood undo web", "lastgood undo web --to-revision 2"},
		summary:  "return to the previous stable revision (or revision N) as a new revision",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.IntVar(&o.toRevision, "to-revision", 0, "the revision whose content to return to")
		},
		run: func(ctx context.Context, e *Env, o *options) error {
			if o.toRevision < 0 {
				return invalid("--to-revision: want a revision number from 1, got %d", o.toRevision)
			}
			return runAction(ctx, e, o, "undo", api.ActionRequest{ToRevision: o.toRevision})
		}})
}

func runAction(ctx context.Context, e *Env, o *options, verb string, req api.ActionRequest) error {
	res, err := o.client().Action(ctx, o.args[0], verb, req)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, res)
	}
	fmt.Fprintln(e.Stdout, res.Message)
	return nil
}
