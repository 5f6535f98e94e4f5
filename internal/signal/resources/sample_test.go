package resources

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// helper is a helper process in its own process group.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader // its answers, after "ready"
	pgid  int
	done  chan error
}

// startHelper starts the test binary in mode, in a new process group, and
// waits for it to say it is ready. It is stopped when the test ends.
func startHelper(t *testing.T, mode string, mib, files int) *helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, mibEnv+"="+strconv.Itoa(mib), filesEnv+"="+strconv.Itoa(files))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(out), pgid: cmd.Process.Pid, done: make(chan error, 1)}
	t.Cleanup(func() { h.stop(t) })
	ready := make(chan string, 1)
	go func() {
		line, _ := h.out.ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("helper %s did not start: %q", mode, line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper %s not ready after 30s", mode)
	}
	go func() { h.done <- cmd.Wait() }()
	return h
}

// stop asks the helper to exit (closing its stdin), kills its group if it
// does not within 10s, and waits for it. It may be called more than once.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
			if err != nil {
				t.Errorf("helper exited: %v", err)
			}
		}
		return
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-h.pgid, syscall.SIGKILL)
	if err, ok := <-h.done; ok {
		close(h.done)
		t.Errorf("helper did not exit when asked; killed: %v", err)
	}
}

func TestSampleSumsTheGroup(t *testing.T) {
	const mib, files = 64, 50
	h := startHelper(t, "hog", mib, files)

	u, err := Sample(h.pgid)
	if err != nil {
		t.Fatal(err)
	}
	// The hog and its grandchild (16 MiB, 10 files), in the same group.
	if u.Processes != 2 {
		t.Errorf("Processes = %d, want 2 (the helper and its grandchild)", u.Processes)
	}
	if min := int64(mib+16) << 20; u.RSS < min {
		t.Errorf("RSS = %d MiB, want >= %d MiB", u.RSS>>20, min>>20)
	}
	if u.RSS > 1<<30 {
		t.Errorf("RSS = %d MiB, implausibly large", u.RSS>>20)
	}
	if u.FDs < files+10 {
		t.Errorf("FDs = %d, want >= %d", u.FDs, files+10)
	}

	// CPU: the hog and its grandchild each spin a core, and each reports
	// the CPU time the kernel has given it. Two samples of the group are
	// taken between those reports, so the group's CPU growth between them
	// must lie between the reports' sums inside and around them — however
	// little of a core a busy machine gives either process. Reading only
	// the hog would fall short of the lower sum, which holds the
	// grandchild's time too.
	var m Meter
	if first := m.Observe(time.Now(), u); first.Interval != 0 || first.CPU != 0 {
		t.Errorf("first observation = %+v, want no rate", first)
	}
	before := h.cpu(t)
	s1, at1 := sampleNow(t, h.pgid)
	inner := h.cpu(t)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c := h.cpu(t)
		if c.hog-inner.hog >= 300*time.Millisecond && c.grandchild-inner.grandchild >= 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 2 minutes the hog got %v of CPU and its grandchild %v", c.hog-inner.hog, c.grandchild-inner.grandchild)
		}
		time.Sleep(100 * time.Millisecond)
	}
	innerEnd := h.cpu(t)
	s2, at2 := sampleNow(t, h.pgid)
	after := h.cpu(t)

	// /proc counts in clock ticks: each of a process's user and system
	// times is truncated, so a difference of two samples is off by less
	// than two ticks per process.
	const slack = 2 * 2 * clockTick
	got := s2.CPU - s1.CPU
	lower := innerEnd.sum() - inner.sum()
	upper := after.sum() - before.sum()
	if got < lower-slack || got > upper+slack {
		t.Errorf("group CPU grew by %v between two samples; its processes report %v between the samples' inner reports and %v between the outer ones",
			got, lower, upper)
	}
	m.Observe(at1, s1)
	r := m.Observe(at2, s2)
	if r.Interval != at2.Sub(at1) || math.Abs(r.CPU*r.Interval.Seconds()-got.Seconds()) > 1e-9 {
		t.Errorf("rates %+v: want the CPU growth %v over %v", r, got, at2.Sub(at1))
	}
	if r.RSS != s2.RSS || r.FDs != s2.FDs {
		t.Errorf("rates %+v do not carry the sample %+v", r, s2)
	}

	h.stop(t)
	if _, err := Sample(h.pgid); !errors.Is(err, ErrGone) {
		t.Errorf("Sample after the group exited: err = %v, want ErrGone", err)
	}
}

func TestSampleCountsZombieAsGone(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=exit")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pgid := cmd.Process.Pid
	// Not reaped yet: the exited helper stays a zombie until Wait.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := Sample(pgid)
		if errors.Is(err, ErrGone) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("an exited, unreaped helper still counts as live after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(pgid, 0); err != nil {
		t.Errorf("the helper was reaped before Wait (%v): the test did not see a zombie", err)
	}
}

func TestSampleGroupsSeparatesGroups(t *testing.T) {
	a := startHelper(t, "holder", 8, 3)
	b := startHelper(t, "holder", 24, 30)
	missing := 1 << 30 // above any pid_max
	all, err := SampleGroups(a.pgid, b.pgid, missing)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("SampleGroups = %v, want the two live groups only", all)
	}
	ua, ub := all[a.pgid], all[b.pgid]
	if ua.Processes != 1 || ub.Processes != 1 {
		t.Errorf("Processes = %d, %d, want 1 each", ua.Processes, ub.Processes)
	}
	if ub.RSS-ua.RSS < 8<<20 {
		t.Errorf("RSS %d MiB vs %d MiB: the 24 MiB holder should be well above the 8 MiB one", ub.RSS>>20, ua.RSS>>20)
	}
	if ub.FDs-ua.FDs != 27 {
		t.Errorf("FDs %d vs %d, want a difference of 27", ub.FDs, ua.FDs)
	}
	if _, err := Sample(missing); !errors.Is(err, ErrGone) {
		t.Errorf("Sample(no such group): err = %v, want ErrGone", err)
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as proc(5) allows.
	line := "4242 (a) b (c) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 3 0 123 0 0\n"
	p, state, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if p.pgrp != 4240 || state != 'S' || p.cpu != 2670*time.Millisecond {
		t.Errorf("parseStat = pgrp %d state %c cpu %v, want 4240 S 2.67s", p.pgrp, state, p.cpu)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3", "1 (x) S 1 z 3 4 5 6 7 8 9 10 11 12 13"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// selfCPU is what the hog and its grandchild report of their CPU time.
type selfCPU struct{ hog, grandchild time.Duration }

func (c selfCPU) sum() time.Duration { return c.hog + c.grandchild }

// cpu asks the hog for its and its grandchild's own CPU time.
func (h *helper) cpu(t *testing.T) selfCPU {
	t.Helper()
	if _, err := io.WriteString(h.stdin, "cpu\n"); err != nil {
		t.Fatal(err)
	}
	line, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("hog's CPU report: %v", err)
	}
	var hog, gc int64
	if _, err := fmt.Sscan(line, &hog, &gc); err != nil || hog < 0 || gc < 0 {
		t.Fatalf("hog's CPU report %q: %v", line, err)
	}
	return selfCPU{time.Duration(hog), time.Duration(gc)}
}

func sampleNow(t *testing.T, pgid int) (Usage, time.Time) {
	t.Helper()
	u, err := Sample(pgid)
	if err != nil {
		t.Fatal(err)
	}
	return u, time.Now()
}
