package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// kind is one strategy the rounds take in turn; a kill aimed at its
// rollout lands up to rollout after the apply, about how long one takes
// here (a blue-green switches once its replicas are ready and the check
// looked, a rolling update replaces two replicas one by one, a canary
// pauses twice for a second).
type kind struct {
	name, strategy string
	rollout        time.Duration
}

var kinds = []kind{
	{strategy.BlueGreen, "blueGreen: {autoPromote: true}", 400 * time.Millisecond},
	{strategy.Canary, "canary: {steps: [{setWeight: 25}, {pause: {for: 1s}}, {setWeight: 50}, {pause: {for: 1s}}]}", 2500 * time.Millisecond},
	{strategy.Rolling, "rolling: {maxSurge: 1, maxUnavailable: 0}", 800 * time.Millisecond},
}

// crashAfter is how long a bad release's replicas live.
const crashAfter = "3s"

// manifest is release n of the app: the sample app with the run's marker
// and the round in its environment (so each round is a new revision), an
// error-rate check, the run's window. A bad release's replicas exit
// crashAfter after they start. The readiness probe forgives 750 ms of
// timeouts: with the other benchmarks' 100 ms probes, a machine at a
// load average of 40 times every replica out at once now and then.
func manifest(a *harness.App, token string, n int, k kind, bad bool, window time.Duration) string {
	env := fmt.Sprintf(`{%s: "%s", ROUND: "%d"}`, markerEnv, token, n)
	if bad {
		env = fmt.Sprintf(`{%s: "%s", ROUND: "%d", FAULT_CRASH_AFTER: "%s"}`, markerEnv, token, n, crashAfter)
	}
	return fmt.Sprintf(`name: %s
listen: %s
replicas: 2
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: %s
probes:
  readiness: {http: /healthz, period: 250ms, timeout: 250ms, failureThreshold: 3}
strategy:
  %s
analysis:
  alpha: 0.001
  checks:
    - name: errors
      compare: {metric: errorRate, maxIncrease: 0.05}
rollback:
  progressDeadline: 30s
  window: %s
`, a.Name, a.Listen, env, k.strategy, window)
}

// round is one release and the kill -9 that hit it.
type round struct {
	N        int
	Kind     string
	Bad      bool
	Rollout  int64
	Revision int
	// Aim is where the kill was aimed: "rollout" (a random moment after
	// the apply) or "window" (a random moment after the promotion); Delay
	// is that moment, after the apply or the promotion.
	Aim   string
	Delay time.Duration
	// Before is where the rollout stood at the last look before the kill:
	// progressing, paused, window (promoted, window open), promoted (no
	// window, or it had ended), rolled-back.
	Before string
	// Applied and Settled bound the round: the apply was sent, and the
	// round was over.
	Applied, Settled time.Time
	Killed           time.Time // SIGKILL sent
	Bound            time.Time // the app's port accepted a connection again
	Ready            time.Time // the new lastgood's API answered /readyz
	// Recovered is the controller.recovered message of the rollout, ""
	// when the restart decided nothing about it.
	Recovered string
	// How the rollout ended, after its window.
	Phase, Trigger, Reason string
	InWindow               bool
	// Unready are the times of the replica.unready events of the round
	// (a readiness probe failed failureThreshold times in a row).
	Unready []time.Time
	// Orphans are replicas of the killed lastgood still alive 5 s after
	// it; Strays, replicas after the restart that are not children of the
	// new lastgood.
	Orphans, Strays []proc
	Audit           store.Audit
	AuditErr        string
	// Wrong says why the decision was wrong, "" when it was right.
	Wrong string
}

// rounds delivers the first release, starts the load and runs every
// round under it, filling r as it goes.
func rounds(ctx context.Context, cfg config, b *harness.Bench, r *report, progress io.Writer) error {
	token := newToken()
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))
	a, err := harness.NewApp(filepath.Join(b.Root, "apps"), "web", b.Bins.SampleApp)
	if err != nil {
		return err
	}
	res, err := a.Apply(ctx, b.Client, manifest(a, token, 0, kinds[0], false, cfg.window), "first release")
	if err != nil {
		return err
	}
	if err := harness.WaitPromoted(ctx, b.Client, a.Name, res.Rollout); err != nil {
		return fmt.Errorf("first release: %w", err)
	}
	var phase harness.Phase
	phase.Set("warm-up")
	load := harness.StartLoad(ctx, a.Listen, cfg.rate, cfg.workers, &phase)
	defer func() { r.Load = load.Stop() }()
	if err := harness.Sleep(ctx, time.Second); err != nil {
		return err
	}
	for n := 1; n <= cfg.rounds; n++ {
		k := kinds[(n-1)%len(kinds)]
		// one blue-green release in four is bad, its kill aimed in turn
		// at the rollout and at the window
		bad := k.name == strategy.BlueGreen && ((n-1)/len(kinds)%8 == 3 || (n-1)/len(kinds)%8 == 4)
		rd := round{N: n, Kind: k.name, Bad: bad, Aim: "rollout"}
		if n%2 == 0 {
			rd.Aim = "window"
		}
		phase.Set("round %d: %s release", n, k.name)
		err := playRound(ctx, cfg, b, a, token, rng, &rd, &phase)
		r.Rounds = append(r.Rounds, rd)
		fmt.Fprintf(progress, "killnine bench: round %d/%d %s%s, kill aimed at the %s (%s, %s): %s %s%s\n",
			n, cfg.rounds, k.name, map[bool]string{true: " (bad)"}[rd.Bad], rd.Aim, rd.Before,
			rd.Bound.Sub(rd.Killed).Round(time.Millisecond), rd.Phase, rd.Trigger, map[bool]string{true: " — WRONG: " + rd.Wrong}[rd.Wrong != ""])
		if err != nil {
			return fmt.Errorf("round %d: %w", n, err)
		}
	}
	phase.Set("end")
	return harness.Sleep(ctx, time.Second)
}

// playRound applies one release, kills lastgood at a random moment, starts
// it again and follows the rollout to its end.
func playRound(ctx context.Context, cfg config, b *harness.Bench, a *harness.App, token string, rng *rand.Rand, rd *round, phase *harness.Phase) error {
	k := kinds[(rd.N-1)%len(kinds)]
	rd.Applied = time.Now()
	defer func() { rd.Settled = time.Now() }()
	res, err := a.Apply(ctx, b.Client, manifest(a, token, rd.N, k, rd.Bad, cfg.window), fmt.Sprintf("round %d", rd.N))
	if err != nil {
		return err
	}
	rd.Rollout, rd.Revision = res.Rollout, res.Revision
	if rd.Aim == "window" {
		// wait for the promotion (or the end, for a bad release)
		if _, err := harness.WaitEnded(ctx, b.Client, a.Name, res.Rollout, time.Minute); err != nil {
			return err
		}
		rd.Delay = time.Duration(rng.Int64N(int64(cfg.window)))
	} else {
		rd.Delay = time.Duration(rng.Int64N(int64(k.rollout)))
	}
	if err := harness.Sleep(ctx, rd.Delay); err != nil {
		return err
	}
	st, err := b.Client.App(ctx, a.Name)
	if err != nil {
		return err
	}
	rd.Before = where(st, res.Rollout, time.Now())

	phase.Set("round %d: down", rd.N)
	rd.Killed = time.Now()
	b.Server.Kill9()
	rd.Orphans = survivors(token, 5*time.Second)
	bound := make(chan time.Time, 1)
	go func() { bound <- firstAccept(a.Listen, time.Minute) }()
	if err := restart(ctx, b, rd.N); err != nil {
		return err
	}
	rd.Ready = time.Now()
	rd.Bound = <-bound
	if rd.Bound.IsZero() {
		return fmt.Errorf("the app's port %s was not bound within a minute of the restart", a.Listen)
	}
	phase.Set("round %d: restarted", rd.N)
	rd.Strays = strays(token, b.Server.PID())

	end, err := followToEnd(ctx, b.Client, a.Name, res.Rollout, cfg.window)
	if err != nil {
		return err
	}
	d := end.Rollout.Detail
	rd.Phase, rd.Trigger, rd.Reason, rd.InWindow = string(d.Phase), d.Trigger, d.Reason, d.InWindow
	if err := readEvents(ctx, b.Client, a.Name, rd); err != nil {
		return err
	}
	rd.Audit, err = audit(ctx, b)
	if err != nil {
		rd.AuditErr = err.Error()
	}
	rd.Wrong = wrong(*rd)
	phase.Set("round %d: settled", rd.N)
	return harness.Sleep(ctx, 300*time.Millisecond)
}

// where names the state of rollout id in st at now.
func where(st controller.AppStatus, id int64, now time.Time) string {
	if st.Rollout == nil || st.Rollout.ID != id {
		return "unknown"
	}
	d := st.Rollout.Detail
	switch {
	case d.Phase == strategy.Promoted && strategy.InWindow(d, now):
		return "window"
	case d.Phase == strategy.Promoted:
		return "promoted"
	}
	return string(d.Phase)
}

// wrong judges the round's decisions by the documented rules, "" when
// they were right.
func wrong(rd round) string {
	final := strategy.Phase(rd.Phase)
	switch {
	case rd.Bad && final == strategy.Promoted:
		return "a release whose replicas exit stayed promoted through its window"
	case rd.Bad:
		return ""
	case rd.Before == string(strategy.RolledBack):
		return "" // decided before the kill: not a restart's decision (reported apart)
	case (rd.Before == "window" || rd.Before == "promoted") && final != strategy.Promoted:
		return fmt.Sprintf("promoted before the kill, then %s by %s: %s", rd.Phase, rd.Trigger, rd.Reason)
	case final == strategy.RolledBack && rd.Trigger != strategy.TriggerRestart:
		return fmt.Sprintf("a good release rolled back by %s: %s", rd.Trigger, rd.Reason)
	case final != strategy.Promoted && final != strategy.RolledBack:
		return fmt.Sprintf("ended %s", rd.Phase)
	}
	return ""
}

// restart starts lastgood again on the bench's data.
func restart(ctx context.Context, b *harness.Bench, n int) error {
	os.Remove(filepath.Join(b.Root, "api-addr")) // the killed process's address
	s, err := harness.StartServe(ctx, b.Bins.Lastgood, filepath.Join(b.Root, "data"), filepath.Join(b.Root, fmt.Sprintf("serve-%03d.log", n)))
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	b.Server, b.Client = s, &api.Client{Base: s.Base}
	return nil
}

// firstAccept returns when a TCP connection to addr first succeeds, the
// zero time after limit.
func firstAccept(addr string, limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			now := time.Now()
			conn.Close()
			return now
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}
}

// followToEnd waits until rollout id has ended and, when it was promoted
// with a warm previous revision, until its window is over too, so that a
// late rollback would be seen.
func followToEnd(ctx context.Context, c *api.Client, app string, id int64, window time.Duration) (controller.AppStatus, error) {
	return harness.WaitFor(ctx, c, app, window+2*time.Minute, fmt.Sprintf("end of rollout #%d and its window", id),
		func(st controller.AppStatus) (bool, error) {
			r := st.Rollout
			if r == nil || r.ID != id {
				return false, fmt.Errorf("latest rollout is not #%d", id)
			}
			d := r.Detail
			return d.Phase.Final() && !(d.Phase == strategy.Promoted && d.FromReplicas > 0), nil
		})
}

// readEvents takes from the event log the controller.recovered message
// of the round's rollout recorded after the kill, and the round's
// replica.unready events.
func readEvents(ctx context.Context, c *api.Client, app string, rd *round) error {
	evs, err := c.Events(ctx, app, 0)
	if err != nil {
		return err
	}
	var msgs []string
	for _, e := range evs {
		switch {
		case e.Type == strategy.EventRecovered && e.Rollout == rd.Rollout && !e.Time.Before(rd.Killed):
			msgs = append(msgs, e.Message)
		case e.Type == "replica.unready" && !e.Time.Before(rd.Applied):
			rd.Unready = append(rd.Unready, e.Time)
		}
	}
	rd.Recovered = strings.Join(msgs, " / ")
	return nil
}

// audit runs `lastgood audit verify -o json` against the running lastgood.
func audit(ctx context.Context, b *harness.Bench) (store.Audit, error) {
	cmd := exec.CommandContext(ctx, b.Bins.Lastgood, "audit", "verify", "-o", "json", "--server", b.Client.Base)
	out, err := cmd.Output()
	var a store.Audit
	if jerr := json.Unmarshal(out, &a); jerr != nil {
		return a, fmt.Errorf("lastgood audit verify: %v, %w: %s", err, jerr, out)
	}
	if err != nil {
		return a, fmt.Errorf("lastgood audit verify: %w", err)
	}
	return a, nil
}

func newToken() string {
	b := make([]byte, 8)
	crand.Read(b)
	return hex.EncodeToString(b)
}
