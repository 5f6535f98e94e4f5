package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunCancelLeavesNoProcess(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	e := startEngine(t, Config{StopGrace: time.Second})
	ctx := context.Background()
	if err := e.Scale(ctx, sampleSpec("web", 1, nil), 2); err != nil {
		t.Fatal(err)
	}
	if err := e.Scale(ctx, helperSpec(t, "stubborn", 1, modeIgnoreTerm, nil), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Scale(ctx, sampleSpec("crashy", 1, map[string]string{"FAULT_EXIT_ON_START": "1"}), 1); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, r := range append(waitReady(t, e, "web", 2), waitReady(t, e, "stubborn", 1)...) {
		pids = append(pids, r.PID)
	}
	e.stop(t)
	waitFor(t, 10*time.Second, "engine goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d after Run returned: kill(0) = %v, want ESRCH (reaped)", pid, err)
		}
	}
	records, _ := filepath.Glob(filepath.Join(e.cfg.DataDir, "run", "*.pid"))
	if len(records) != 0 {
		t.Errorf("process records left: %v", records)
	}
	if n := len(e.Replicas("web")) + len(e.Replicas("stubborn")) + len(e.Replicas("crashy")); n != 0 {
		t.Errorf("%d replicas listed after Run returned", n)
	}
	if err := e.Scale(ctx, sampleSpec("web", 1, nil), 1); !errors.Is(err, ErrStopped) {
		t.Errorf("Scale after Run = %v, want ErrStopped", err)
	}
	// The data directory is free again.
	e2, err := New(Config{DataDir: e.cfg.DataDir})
	if err != nil {
		t.Fatalf("New after Run returned: %v", err)
	}
	e2.lock.Close()
}

func TestDataDirIsLocked(t *testing.T) {
	e := startEngine(t, Config{})
	if _, err := New(Config{DataDir: e.cfg.DataDir}); !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("second New on one data dir = %v, want ErrDataDirInUse", err)
	}
}

// miniLastgood starts the test binary as a lastgood that runs n replicas of
// argv, and returns it with the replicas' pids.
func startMiniLastgood(t *testing.T, dataDir string, n int, replicaMode string, env []string, argv ...string) (*exec.Cmd, []int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmdJSON, _ := json.Marshal(argv)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+modeMiniLastgood, "LG_DATA="+dataDir,
		"LG_N="+strconv.Itoa(n), "LG_CMD="+string(cmdJSON), "LG_REPLICA_MODE="+replicaMode)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "PIDS ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	var pids []int
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatal("mini lastgood ended without printing its replicas")
		}
		for _, f := range strings.Fields(line)[1:] {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mini lastgood printed no pids within 30s")
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	return cmd, pids
}

func TestKilledLastgoodLeavesNoReplicas(t *testing.T) {
	cmd, pids := startMiniLastgood(t, t.TempDir(), 2, "", nil, sampleApp)
	if len(pids) != 2 {
		t.Fatalf("pids = %v, want 2", pids)
	}
	for _, pid := range pids {
		if gone(pid) {
			t.Fatalf("replica %d is not running before the kill", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, pid := range pids {
		waitFor(t, 10*time.Second, "replica "+strconv.Itoa(pid)+" gone after its lastgood was killed", func() bool { return gone(pid) })
	}
}

func TestSweepKillsOrphanedGroupMembers(t *testing.T) {
	dataDir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, pids := startMiniLastgood(t, dataDir, 1, modeGrandparent, []string{"GRANDCHILD_PID_FILE=" + pidFile}, self)
	var grandchild int
	waitFor(t, 20*time.Second, "grandchild pid file", func() bool {
		b, err := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(string(b))
		return err == nil && grandchild > 0
	})
	t.Cleanup(func() { syscall.Kill(grandchild, syscall.SIGKILL) })
	if g, ok := processGroup(grandchild); !ok || g != pids[0] {
		t.Fatalf("grandchild %d in group %d, want the replica's group %d", grandchild, g, pids[0])
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitFor(t, 10*time.Second, "replica gone", func() bool { return gone(pids[0]) })
	time.Sleep(200 * time.Millisecond)
	if gone(grandchild) {
		t.Fatal("the grandchild died with its parent; the sweep has nothing to do")
	}

	e, err := New(Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.lock.Close()
	waitFor(t, 10*time.Second, "grandchild killed by the sweep", func() bool { return gone(grandchild) })
	records, _ := filepath.Glob(filepath.Join(dataDir, "run", "*.pid"))
	if len(records) != 0 {
		t.Errorf("records left after the sweep: %v", records)
	}
}

func TestSweepSparesUnrelatedGroups(t *testing.T) {
	// A record naming a live group that is not a lastgood replica (no
	// LASTGOOD_APP in its environment), as after pid reuse.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command(self)
	other.Env = []string{helperEnv + "=" + modeSleep}
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		other.Process.Kill()
		other.Wait()
	})
	runDir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := processRecord{PGID: other.Process.Pid, App: "web", Revision: 1, Replica: "web-1-0"}
	if err := writeRecord(filepath.Join(runDir, "web-1-0.pid"), rec); err != nil {
		t.Fatal(err)
	}
	killed, err := sweep(runDir)
	if err != nil || len(killed) != 0 {
		t.Errorf("sweep = %v, %v; want nothing killed", killed, err)
	}
	if gone(other.Process.Pid) {
		t.Error("the sweep killed an unrelated process group")
	}
	if _, err := os.Stat(filepath.Join(runDir, "web-1-0.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record not removed: %v", err)
	}
}
