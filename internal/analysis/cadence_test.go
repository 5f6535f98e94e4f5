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

	tl := runCounting(r, nil)
	// Traffic on both revisions while the checks look.
	stop := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(stop) {
		w.add(1, 40, 0)
		w.add(2, 10, 0)
		time.Sleep(5 * time.Millisecond)
	}
	tl.stop()

	seen := tl.counts()
	if seen["errors"] < 8 {
		t.Errorf("compare looked %d times in 300ms at a 20ms routerInterval, want at least 8 (%v)", seen["errors"], seen)
	}
	if seen["memory"] < 1 || seen["memory"] > 2 {
		t.Errorf("resources looked %d times in 300ms at a 1s interval, want 1 or 2 (%v)", seen["memory"], seen)
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
