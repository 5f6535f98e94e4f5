package cli

import (
	"context"
	"flag"
	"fmt"
)

func init() {
	register(&command{name: "delete", args: "APP [--force]", nargs: [2]int{1, 1},
		summary: "stop an app and free its address; its history and incidents stay",
		details: `Delete stops every replica of the app and closes its router, so its
listen address is free when the command returns. Its revisions, rollouts,
event log and incidents are kept: history, events and incidents still
show them, and applying the app again brings it back as a first release
whose revision numbers go on from the kept ones. A rollout in progress is
refused (exit 2) unless --force, which aborts it first.`,
		examples: []string{"lastgood delete web", "lastgood delete web --force"},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.force, "force", false, "abort a rollout in progress, then delete")
		},
		run: runDelete})
}

func runDelete(ctx context.Context, e *Env, o *options) error {
	res, err := o.client().Delete(ctx, o.args[0], o.force)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, res)
	}
	fmt.Fprintln(e.Stdout, res.Message)
	return nil
}
