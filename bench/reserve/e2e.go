package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
)

// round is one canary rolled back on a full disk by a real lastgood.
type round struct {
	reserve bool
	// decisionToOff: the rollback's decision (its event's time) → the
	// last answer from the canary.
	decisionToOff time.Duration
	// flipToOff: the check starting to fail → the last canary answer
	// (includes up to one check interval before the look that decides).
	flipToOff time.Duration
	// switchMs and recordDelayMs come from the rollout.recorded-late event
	// (without a reserve): decision → traffic switched, and → recorded.
	switchMs      float64
	recordDelayMs int64
	late          bool // a rollout.recorded-late event followed
	released      bool // store.reserve-released was recorded
	canaryAfter   int  // canary answers after the decision
	failedAfter   int  // failed requests after the decision
	requests      int
}

// e2e rolls a failing canary back on a full disk, rounds times with the
// reserve and rounds times without, each on a fresh tmpfs.
func e2e(ctx context.Context, rounds int, rate float64) ([]round, error) {
	root, err := os.MkdirTemp("", "lastgood-reserve-e2e-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	fmt.Fprintln(os.Stderr, "reserve bench: building lastgood and the sample app")
	bins, err := harness.Build(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []round
	for _, withReserve := range []bool{true, false} {
		for i := range rounds {
			r, err := oneRound(ctx, root, bins, withReserve, i, rate)
			if err != nil {
				return nil, fmt.Errorf("round %d (reserve %v): %w", i, withReserve, err)
			}
			fmt.Fprintf(os.Stderr, "reserve bench: reserve=%v round %d: decision → off the canary %s\n", withReserve, i, r.decisionToOff)
			out = append(out, r)
		}
	}
	return out, nil
}

func oneRound(ctx context.Context, root string, bins harness.Binaries, withReserve bool, i int, rate float64) (round, error) {
	res := round{reserve: withReserve}
	disk := filepath.Join(root, fmt.Sprintf("disk-%v-%d", withReserve, i))
	if err := os.MkdirAll(disk, 0o755); err != nil {
		return res, err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk).CombinedOutput(); err != nil {
		return res, fmt.Errorf("mount a tmpfs (run as root): %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", disk).Run()
	flag := "--reserve=8Mi"
	if !withReserve {
		flag = "--reserve=0"
	}
	srv, err := harness.StartServeArgs(ctx, bins.Lastgood, filepath.Join(disk, "data"), filepath.Join(root, fmt.Sprintf("serve-%v-%d.log", withReserve, i)), flag)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	c := &api.Client{Base: srv.Base}

	var verdict atomic.Value
	verdict.Store("inconclusive")
	judge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"verdict": %q, "reason": "the bench says so"}`, verdict.Load())
	}))
	defer judge.Close()

	a, err := harness.NewApp(root, fmt.Sprintf("web-%v-%d", withReserve, i), bins.SampleApp)
	if err != nil {
		return res, err
	}
	v1, err := a.Apply(ctx, c, a.Manifest("{}", "strategy: {blueGreen: {}}\n"), "v1")
	if err != nil {
		return res, err
	}
	if err := harness.WaitPromoted(ctx, c, a.Name, v1.Rollout); err != nil {
		return res, err
	}
	var phase harness.Phase
	load := harness.StartLoad(ctx, a.Listen, rate, 8, &phase)
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
		}
	}()
	tail := fmt.Sprintf(`strategy: {canary: {steps: [{setWeight: 20}, {analyze: {for: 1m}}]}}
analysis:
  interval: 100ms
  checks:
    - {name: external, webhook: {url: %s/judge}}
rollback: {window: 1m}
`, judge.URL)
	v2, err := a.Apply(ctx, c, a.Manifest(`{FAULT_ERROR_RATE: "0.5"}`, tail), "v2")
	if err != nil {
		return res, err
	}
	if _, err := harness.WaitFor(ctx, c, a.Name, 30*time.Second, "the canary at 20%", func(st controller.AppStatus) (bool, error) {
		for _, r := range st.Traffic {
			if r.Revision == 2 && r.Weight == 20 && len(r.Backends) > 0 {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return res, err
	}
	harness.Sleep(ctx, time.Second) // the canary serves a while
	filler := filepath.Join(disk, "fill")
	if err := fill(filler); err != nil {
		return res, err
	}
	flipped := time.Now()
	verdict.Store("fail")
	// Traffic moves with or without the record; give the record a few
	// seconds to wait, then make room.
	if _, err := harness.WaitFor(ctx, c, a.Name, 30*time.Second, "traffic back on revision 1", func(st controller.AppStatus) (bool, error) {
		for _, r := range st.Traffic {
			if r.Revision == 2 && r.Weight > 0 && len(r.Backends) > 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return res, err
	}
	harness.Sleep(ctx, 2*time.Second)
	os.Remove(filler)
	if _, err := harness.WaitEnded(ctx, c, a.Name, v2.Rollout, 30*time.Second); err != nil {
		return res, err
	}
	harness.Sleep(ctx, 500*time.Millisecond)
	run := load.Stop()
	stopped = true

	evs, err := c.Events(ctx, "", 0)
	if err != nil {
		return res, err
	}
	var decided time.Time
	for _, e := range evs {
		switch {
		case e.Type == "rollout.rolled-back" && e.Rollout == v2.Rollout:
			decided = e.Time
		case e.Type == controller.TypeRecordedLate:
			res.late = true
			var d struct {
				SwitchMs      float64 `json:"switchMs"`
				RecordDelayMs int64   `json:"recordDelayMs"`
			}
			json.Unmarshal(e.Data, &d)
			res.switchMs, res.recordDelayMs = d.SwitchMs, d.RecordDelayMs
		case e.Type == "store.reserve-released":
			res.released = true
		}
	}
	if decided.IsZero() {
		return res, fmt.Errorf("no rollout.rolled-back event for rollout %d", v2.Rollout)
	}
	var lastCanary time.Time
	for _, r := range run.Responses {
		done := run.Time(r.Done)
		if r.Revision == 2 && done.After(lastCanary) {
			lastCanary = done
		}
		if done.After(decided) {
			res.requests++
			if r.Revision == 2 {
				res.canaryAfter++
			}
			if r.Failed() {
				res.failedAfter++
			}
		}
	}
	// Zero when the canary's last answer came before the decision.
	res.decisionToOff = max(0, lastCanary.Sub(decided))
	res.flipToOff = lastCanary.Sub(flipped)
	return res, nil
}

// reportE2E writes the end-to-end table.
func reportE2E(rs []round, rate float64) {
	fmt.Printf("\n## End to end: a failing canary on a full disk\n\n")
	fmt.Printf("A real `lastgood serve` (built from this tree) with its data directory on a 64 MiB tmpfs; an app of 2 replicas under %.0f req/s of open-loop load; a canary at 20%% that fails half its requests, judged by a webhook check (every 100 ms) that the bench turns to `fail` right after filling the disk. Two seconds after traffic left the canary the bench frees the disk. Times are from the rollback's decision (the time of its `rollout.rolled-back` event, which is the decision's time in both modes) to the last answer any client got from the canary; *switch* and *recorded* come from the `rollout.recorded-late` event.\n\n", rate)
	fmt.Println("| reserve | round | decision → last canary answer | check turned → last canary answer | canary answers after the decision (failed requests after it) | reserve given up | recorded late: switch / recorded after the decision |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for i, r := range rs {
		mode := "8 MiB"
		if !r.reserve {
			mode = "none"
		}
		late := "no: recorded at once"
		if r.late {
			late = fmt.Sprintf("%.2f ms / %d ms", r.switchMs, r.recordDelayMs)
		}
		fmt.Printf("| %s | %d | %s | %s | %d (%d of %d) | %v | %s |\n", mode, i%max(1, len(rs)/2), r.decisionToOff.Round(time.Millisecond),
			r.flipToOff.Round(time.Millisecond), r.canaryAfter, r.failedAfter, r.requests, r.released, late)
	}
	for _, withReserve := range []bool{true, false} {
		var ds []time.Duration
		for _, r := range rs {
			if r.reserve == withReserve {
				ds = append(ds, r.decisionToOff)
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		fmt.Printf("\nReserve %v: decision → last canary answer p50 %s, max %s over %d rounds.\n", withReserve, ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	}
}
