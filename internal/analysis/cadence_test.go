package analysis

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
)

// The router checks look every routerInterval, the others every interval,
// each on its own ticker.
func TestRouterChecksLookAtTheirOwnCadence(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	w := &world{
		samples:  map[int]judge.Sample{},
		replicas: []Replica{{Revision: 2, PID: cmd.Process.Pid, Ready: true, Started: t0}},
	}
	tg := target(
		manifest.Check{Name: "errors", Compare: &manifest.Compare{Metric: "errorRate", MaxIncrease: "0.01"}},
		manifest.Check{Name: "memory", Resources: &manifest.Resources{MaxRSS: 1 << 30}},
	)
	tg.Analysis.RouterInterval = manifest.Duration(20 * time.Millisecond)
	tg.Analysis.Interval = manifest.Duration(time.Second)
	r, err := New(tg, w.sources(), time.Now)
	if err != nil {
		t.Fatal(err)
	}

	// Traffic on both revisions while the checks look, until the compare
	// check has looked 10 times (and the resources check once). A ticker never fires more often than its
	// period, so however slowly a busy machine runs the test, in the time
	// T that took the resources check can have looked at most 1 + T/1s
	// times; looking at the router cadence it would have looked 10.
	start := time.Now()
	tl := runCounting(r, nil)
	deadline := start.Add(2 * time.Minute)
	// The resources check's first look starts at once but, on a busy
	// machine, may end after the tenth compare look: wait for both.
	for tl.counts()["errors"] < 10 || tl.counts()["memory"] < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("in 2 minutes compare looked %d times at a 20ms routerInterval (want 10), resources %d (want 1)", tl.counts()["errors"], tl.counts()["memory"])
		}
		w.add(1, 40, 0)
		w.add(2, 10, 0)
		time.Sleep(5 * time.Millisecond)
	}
	tl.stop()
	took := time.Since(start)

	seen := tl.counts()
	if most := 1 + int(took/time.Second); seen["memory"] < 1 || seen["memory"] > most {
		t.Errorf("resources looked %d times in %v at a 1s interval, want 1 to %d (%v)", seen["memory"], took, most, seen)
	}
	if most := 2 + int(took/(20*time.Millisecond)); seen["errors"] > most {
		t.Errorf("compare looked %d times in %v at a 20ms routerInterval, want at most %d", seen["errors"], took, most)
	}
}

// Without positive cadences (a Target built by hand), the router checks
// fall back to 100ms and the others to 1s.
func TestCadenceFallbacks(t *testing.T) {
	tg := target(
		manifest.Check{Name: "slo", Threshold: &manifest.Threshold{Metric: "errorRate", Max: "0.05"}},
		manifest.Check{Name: "panics", Logs: &manifest.Logs{Match: "panic"}},
	)
	tg.Analysis.Interval, tg.Analysis.RouterInterval = 0, -1
	w := &world{samples: map[int]judge.Sample{}}
	r, err := New(tg, w.sources(), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if want := []time.Duration{100 * time.Millisecond, time.Second}; len(r.every) != 2 || r.every[0] != want[0] || r.every[1] != want[1] {
		t.Errorf("cadences %v, want %v", r.every, want)
	}
}
