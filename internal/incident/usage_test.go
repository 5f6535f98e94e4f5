package incident

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestUsageSamplesRealProcessesPerRevision(t *testing.T) {
	var pids []int
	for range 2 {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	var u usage
	t0 := time.Now()
	procs := []Process{{Revision: 1, PID: pids[0]}, {Revision: 2, PID: pids[1]}, {Revision: 2, PID: 999999999}}
	u.sample(t0, procs)
	u.sample(t0.Add(time.Second), procs)
	if len(u.points) != 4 {
		t.Fatalf("%d points, want one per revision per sample: %+v", len(u.points), u.points)
	}
	for _, p := range u.points {
		if p.Replicas != 1 || p.RSSBytes <= 0 || p.FDs < 1 {
			t.Errorf("point %+v: want one live replica with memory and open files", p)
		}
	}
	if got := u.between(t0.Add(500*time.Millisecond), t0.Add(2*time.Second)); len(got) != 2 {
		t.Errorf("between kept %d points, want the second sample's 2", len(got))
	}
	if len(u.meters) != 2 {
		t.Errorf("meters for %d groups, want the 2 live ones", len(u.meters))
	}
}
