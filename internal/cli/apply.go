package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

func init() {
	register(&command{
		name: "apply", args: "-f FILE [--wait] [--wait-window]",
		summary: "store a new revision and roll it out",
		details: `Content equal to the stable revision, or to the one rolling out, is
nothing to do: no revision, no rollout, exit 0. With --wait the exit code
is 0 when the rollout is promoted and 3 when it is rolled back or aborted.`,
		examples: []string{
			"lastgood apply -f app.yaml",
			"lastgood apply -f app.yaml --wait   # a CI gate: exit 3 on a rollback",
		},
		nargs: [2]int{0, 0},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.file, "f", "", "the manifest `FILE`")
			fs.BoolVar(&o.wait, "wait", false, "wait until the rollout ends; exit 3 if it is rolled back or aborted")
			fs.BoolVar(&o.waitWindow, "wait-window", false, "like --wait, and also wait through the rollback window")
		},
		run: runApply,
	})
}

func runApply(ctx context.Context, e *Env, o *options) error {
	if o.file == "" {
		return invalid("-f FILE is required")
	}
	c := o.client()
	res, err := c.ApplyFile(ctx, o.file)
	if errors.Is(err, manifest.ErrInvalid) {
		return &exitError{ExitInvalid, err}
	}
	if err != nil {
		return err
	}
	if o.output == "json" && !o.wait && !o.waitWindow {
		return printJSON(e.Stdout, res)
	}
	if o.output != "json" {
		fmt.Fprintln(e.Stdout, res.Message)
		for _, f := range res.Flags {
			fmt.Fprintln(e.Stdout, f.Message)
		}
	}
	if (!o.wait && !o.waitWindow) || res.Rollout == 0 {
		if o.output == "json" {
			return printJSON(e.Stdout, res)
		}
		return nil
	}
	st, err := waitRollout(ctx, e, o, c, res.App, res.Rollout, o.waitWindow)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if err := printJSON(e.Stdout, st); err != nil {
			return err
		}
	}
	if st.Rollout != nil && st.Rollout.Phase != string(strategy.Promoted) {
		return &exitError{ExitRollback, nil}
	}
	return nil
}

// waitRollout follows a rollout until it ends (and with window, until its
// rollback window ends too), printing its events as they come and, at the
// end, any the stream had not delivered yet.
func waitRollout(ctx context.Context, e *Env, o *options, c *api.Client, app string, id int64, window bool) (controller.AppStatus, error) {
	var mu sync.Mutex
	var last int64 // the last event seen
	print := func(ev store.Event) bool {
		mu.Lock()
		defer mu.Unlock()
		if ev.Seq <= last {
			return true
		}
		last = ev.Seq
		if ev.Rollout == id && o.output != "json" {
			fmt.Fprintf(e.Stdout, "  %s  %s\n", ev.Time.Local().Format("15:04:05.000"), ev.Message)
		}
		return true
	}
	streamCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(streamCtx, app, 0, print)
	}()
	st, err := pollRollout(ctx, c, app, id, window)
	stop()
	<-done
	if err != nil {
		return st, err
	}
	mu.Lock()
	after := last
	mu.Unlock()
	rest, err := c.Events(ctx, app, after)
	if err != nil {
		return st, err
	}
	for _, ev := range rest {
		print(ev)
	}
	if o.output != "json" {
		fmt.Fprintf(e.Stdout, "rollout #%d %s%s\n", id, st.Rollout.Phase, incidentNote(st.Rollout))
	}
	return st, nil
}

// pollRollout returns once rollout id has ended (and with window, once its
// rollback window has ended too).
func pollRollout(ctx context.Context, c *api.Client, app string, id int64, window bool) (controller.AppStatus, error) {
	for {
		st, err := c.App(ctx, app)
		if err != nil {
			return st, err
		}
		r := st.Rollout
		if r == nil || r.ID != id {
			return st, fmt.Errorf("rollout #%d is no longer the latest of %s", id, app)
		}
		if strategy.Phase(r.Phase).Final() &&
			(!window || r.Phase != string(strategy.Promoted) || !time.Now().Before(r.Detail.WarmUntil)) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
