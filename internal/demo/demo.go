// Package demo plays lastgood's story on this machine with nothing to set
// up: it builds a bundled sample app, starts lastgood on a temporary data
// directory, and releases v1, a good v2 (blue-green, no failed request), a
// v3 that never becomes ready (refused by itself while clients stay on v2),
// and finally undoes back to v1 — showing traffic, replicas and events
// live. It leaves no process and no file behind.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/server"
	"github.com/lastgood/lastgood/internal/strategy"
)

// Options says where the story is told.
type Options struct {
	Out io.Writer
	// Live redraws a terminal view in place (ANSI); otherwise the story is
	// printed line by line, as for a log.
	Live bool
	// Version is the lastgood version shown.
	Version string
}

// Run plays the demo and returns an error if any act did not go as told —
// a client request that failed where none should, a rollout that ended
// otherwise than expected.
func Run(ctx context.Context, o Options) error {
	dir, err := os.MkdirTemp("", "lastgood-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(o.Out, "lastgood demo: building the sample app (v1 … v4) in %s …\n", dir)
	if err := buildSample(ctx, dir, "v1", "v2", "v3", "v4"); err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiAddr := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- server.Run(ctx, server.Config{
			DataDir: filepath.Join(dir, "data"), API: "127.0.0.1:0", Version: o.Version,
			StopGrace: 2 * time.Second, Listening: func(addr string) { apiAddr <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-apiAddr:
	case err := <-served:
		return fmt.Errorf("start lastgood: %w", err)
	}
	s := &story{
		o: o, dir: dir, c: &api.Client{Base: "http://" + addr},
		listen: ports[0], preview: ports[1],
		clients: newLoad("http://"+ports[0]+"/", 50),
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	s.startClients = func() { go func() { defer close(loadDone); s.clients.run(loadCtx) }() }

	err = s.play(ctx)
	stopLoad()
	if s.startClients == nil {
		<-loadDone
	}
	cancel()
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	if err == nil {
		fmt.Fprintln(o.Out, "\nlastgood stopped; every replica it started has exited. Run `lastgood serve` to keep going.")
	}
	return err
}

func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// story is the demo's script and its view.
type story struct {
	o               Options
	dir             string
	c               *api.Client
	listen, preview string
	clients         *load
	// startClients starts the clients once the app first serves; it is
	// nil after.
	startClients func()

	act     string
	lastSeq int64
	events  []string // recent, for the live view
}

// blueGreen and canary are the strategies of the demo's releases.
const (
	blueGreen = "blueGreen: {autoPromote: true, preview: %s}"
	canary    = "canary: {steps: [{setWeight: 40}, {analyze: {for: 30s}}]}"
)

// manifest writes the app's manifest for a version and returns its path.
func (s *story) manifest(version, extraEnv, strat string) (string, error) {
	env := "GREETING: hello"
	if extraEnv != "" {
		env += ", " + extraEnv
	}
	if strat == blueGreen {
		strat = fmt.Sprintf(blueGreen, s.preview)
	}
	text := fmt.Sprintf(`# The demo's app: two replicas behind lastgood's router.
name: web
listen: %s
replicas: 2
run:
  command: ["./bin/web-%s"]
  artifacts: ["./bin/web-%s"]
  env: {%s}
probes:
  readiness: {http: /healthz, period: 200ms, failureThreshold: 2}
strategy:
  %s
analysis:
  interval: 500ms
  checks:
    - name: errors
      compare: {metric: errorRate, maxIncrease: 0.01}
rollback:
  progressDeadline: 6s
  window: 10m
`, s.listen, version, version, env, strat)
	path := filepath.Join(s.dir, "web.yaml")
	return path, os.WriteFile(path, []byte(text), 0o644)
}

func (s *story) play(ctx context.Context) error {
	type act struct {
		title, version, env, strat, want string
		undo                             bool
		// faulty: requests the new revision fails are its blast radius,
		// not a failure of the act.
		faulty bool
	}
	acts := []act{
		{title: "release v1", version: "v1", strat: blueGreen, want: string(strategy.Promoted)},
		{title: "blue-green to a good v2: the switch fails no request", version: "v2", strat: blueGreen, want: string(strategy.Promoted)},
		{title: "v3 never becomes ready: lastgood refuses it by itself, clients stay on v2", version: "v3", strat: blueGreen,
			env: `FAULT_NEVER_READY: "1"`, want: string(strategy.RolledBack)},
		{title: "v4 fails 8% of its requests: a 40% canary, judged live against v2, is rolled back by itself", version: "v4",
			strat: canary, env: `FAULT_ERROR_RATE: "0.08"`, want: string(strategy.RolledBack), faulty: true},
		{title: "undo: back to v1, still warm, so only traffic moves", undo: true, want: string(strategy.Promoted)},
	}
	for i, a := range acts {
		s.act = fmt.Sprintf("act %d of %d: %s", i+1, len(acts), a.title)
		s.say("\n== %s ==", s.act)
		_, failedBefore, _ := s.clients.counts()
		byRevBefore := s.clients.failures()
		var id int64
		if a.undo {
			res, err := s.c.Action(ctx, "web", "undo", api.ActionRequest{})
			if err != nil {
				return fmt.Errorf("undo: %w", err)
			}
			s.say("$ lastgood undo web\n%s", res.Message)
			id = res.Rollout
		} else {
			file, err := s.manifest(a.version, a.env, a.strat)
			if err != nil {
				return err
			}
			res, err := s.c.ApplyFile(ctx, file)
			if err != nil {
				return fmt.Errorf("apply %s: %w", a.version, err)
			}
			s.say("$ lastgood apply -f web.yaml   # %s\n%s", a.version, res.Message)
			id = res.Rollout
		}
		phase, err := s.wait(ctx, id)
		if err != nil {
			return err
		}
		// Let the clients see the new state for a moment before judging them.
		if err := s.watch(ctx, time.Second); err != nil {
			return err
		}
		served, failed, last := s.clients.counts()
		s.say("rollout #%d %s; clients so far: %s; failed during this act: %d", id, phase, describeServed(served), failed-failedBefore)
		if phase != a.want {
			return fmt.Errorf("%s: rollout #%d ended %s, want %s", s.act, id, phase, a.want)
		}
		if a.faulty {
			// The faulty revision's own failures are the blast radius;
			// any other failure fails the act.
			st, err := s.c.App(ctx, "web")
			if err != nil {
				return err
			}
			bad := st.Rollout.To
			n := s.clients.failures()[bad] - byRevBefore[bad]
			s.say("blast radius: %d client requests failed, all answered by revision %d, before lastgood took it out (%s)",
				n, bad, st.Rollout.Reason)
			failed -= n
		}
		if s.startClients != nil {
			s.startClients()
			s.startClients = nil
			s.say("50 clients' requests per second now go to %s", s.listen)
		}
		if failed > failedBefore {
			return fmt.Errorf("%s: %d client requests failed (last: %s)", s.act, failed-failedBefore, last)
		}
	}
	return s.epilogue(ctx)
}

// wait shows the rollout until it ends and returns its final phase.
func (s *story) wait(ctx context.Context, id int64) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := s.c.App(ctx, "web")
		if err != nil {
			return "", err
		}
		if err := s.show(ctx); err != nil {
			return "", err
		}
		if r := st.Rollout; r != nil && r.ID == id && strategy.Phase(r.Phase).Final() {
			return r.Phase, nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: rollout #%d did not end within a minute", s.act, id)
}

// watch keeps the view up for d.
func (s *story) watch(ctx context.Context, d time.Duration) error {
	for end := time.Now().Add(d); time.Now().Before(end); {
		if err := s.show(ctx); err != nil {
			return err
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (s *story) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if !s.o.Live {
		fmt.Fprintln(s.o.Out, line)
		return
	}
	s.events = append(s.events, strings.Split(line, "\n")...)
}

func describeServed(served map[int]int) string {
	if len(served) == 0 {
		return "none served yet"
	}
	var parts []string
	for rev := 1; rev <= 16; rev++ {
		if n := served[rev]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d by revision %d", n, rev))
		}
	}
	return strings.Join(parts, ", ")
}

// epilogue prints the history and checks the event log.
func (s *story) epilogue(ctx context.Context) error {
	if s.o.Live {
		s.o.Live = false // leave the last view on screen and print below it
		fmt.Fprintln(s.o.Out)
	}
	revs, err := s.c.Revisions(ctx, "web")
	if err != nil {
		return err
	}
	rollouts, err := s.c.Rollouts(ctx, "web")
	if err != nil {
		return err
	}
	fmt.Fprintln(s.o.Out, "\n== history (lastgood history web) ==")
	outcome := map[int]string{}
	for i := len(rollouts) - 1; i >= 0; i-- {
		outcome[rollouts[i].To] = rollouts[i].Phase
	}
	for _, r := range revs {
		origin := r.Origin
		if r.CopyOf > 0 {
			origin = fmt.Sprintf("undo of revision %d", r.CopyOf)
		}
		fmt.Fprintf(s.o.Out, "revision %d  %-20s %-12s %s\n", r.Number, origin, outcome[r.Number], r.Digest[:19])
	}
	a, err := s.c.Audit(ctx)
	if err != nil {
		return err
	}
	if !a.OK() {
		return errors.New("the event log did not verify")
	}
	served, failed, _ := s.clients.counts()
	fmt.Fprintf(s.o.Out, "\nclients: %s; %d failed", describeServed(served), failed)
	if failed > 0 {
		fmt.Fprintf(s.o.Out, " (%s)", describeServed(s.clients.failures()))
	}
	fmt.Fprintln(s.o.Out)
	fmt.Fprintf(s.o.Out, "event log: %d events, hash chain verified (head %s…)\n", a.Events, a.Head[:16])
	return nil
}
