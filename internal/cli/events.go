package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/store"
)

func init() {
	register(&command{name: "events", args: "[APP] [--follow]", nargs: [2]int{0, 1},
		examples: []string{"lastgood events web", "lastgood events --follow"},
		summary:  "print the event log (--follow: keep printing new events)",
		flags:    func(fs *flag.FlagSet, o *options) { fs.BoolVar(&o.follow, "follow", false, "keep printing new events") },
		run:      runEvents})
}

func runEvents(ctx context.Context, e *Env, o *options) error {
	app := ""
	if len(o.args) == 1 {
		app = o.args[0]
	}
	c := o.client()
	print := func(ev store.Event) bool {
		if o.output == "json" {
			printJSON(e.Stdout, ev)
		} else {
			writeEvent(e.Stdout, ev, app == "")
		}
		return true
	}
	if o.follow {
		return c.Follow(ctx, app, 0, print)
	}
	evs, err := c.Events(ctx, app, 0)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, evs)
	}
	for _, ev := range evs {
		print(ev)
	}
	return nil
}

func writeEvent(w io.Writer, ev store.Event, withApp bool) {
	app := ""
	if withApp {
		app = fmt.Sprintf("%-16s ", ev.App)
	}
	by := ""
	if ev.Actor != "" && ev.Actor != access.Anonymous {
		// Who asked, when lastgood has tokens; without them every
		// caller is the same anonymous one (-o json still says so).
		by = "  (by " + ev.Actor + ")"
	}
	fmt.Fprintf(w, "%s  %s%-22s %s%s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"), app, ev.Type, ev.Message, by)
}
