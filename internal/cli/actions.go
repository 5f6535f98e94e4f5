package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

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
	register(&command{name: "undo", args: "APP [--to-revision N] [--force]", nargs: [2]int{1, 1},
		examples: []string{"lastgood undo web", "lastgood undo web --to-revision 2", "lastgood undo web --to-revision 3 --force"},
		summary:  "return to the previous stable revision (or revision N) as a new revision, judged like any release",
		details: `Undo makes a new revision with the content of the previous stable
revision (or of revision N) and switches traffic to it. Returning to the
previous stable while it is still warm is a switch only; any other undo
switches once the revision is ready and every check has looked at it.
Either way its checks judge it through the rollback window after the
switch, and a failure there switches back to what served before the undo.
A revision whose content was rolled back or aborted is refused (exit 2,
naming the incident) unless --force is given; the event log records it.`,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.Var(&revisionFlag{n: &o.toRevision, set: &o.toRevisionSet}, "to-revision", "the revision `N` whose content to return to (from 1)")
			fs.BoolVar(&o.force, "force", false, "undo to a revision that was rolled back or aborted anyway")
		},
		run: func(ctx context.Context, e *Env, o *options) error {
			if o.toRevisionSet && o.toRevision < 1 {
				return invalid("--to-revision: want a revision number from 1, got %d (leave it out to return to the previous stable revision)", o.toRevision)
			}
			return runAction(ctx, e, o, "undo", api.ActionRequest{ToRevision: o.toRevision, Force: o.force})
		}})
}

// revisionFlag is an int flag that remembers it was given, so that
// `--to-revision 0` is refused rather than taken for "not given".
type revisionFlag struct {
	n   *int
	set *bool
}

func (f *revisionFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return strconv.Itoa(*f.n)
}

func (f *revisionFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want a revision number, got %q", v)
	}
	*f.n, *f.set = n, true
	return nil
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
