package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// machineCPU is the whole machine's CPU time from /proc/stat.
type machineCPU struct {
	busy, total time.Duration
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("machine CPU: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var m machineCPU
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return m, fmt.Errorf("machine CPU: %q: %w", line, err)
		}
		d := time.Duration(n) * clockTick
		m.total += d
		if i != 3 && i != 4 { // idle, iowait
			m.busy += d
		}
	}
	return m, nil
}

// processCPU returns a process's own user+system CPU time from
// /proc/<pid>/stat (not its children's).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU of pid %d: %w", pid, err)
	}
	// After "pid (comm)": state is field 3; utime and stime are fields 14
	// and 15.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var sum time.Duration
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU of pid %d: %w", pid, err)
		}
		sum += time.Duration(n) * clockTick
	}
	return sum, nil
}

// selfCPU returns the benchmark's own user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuUse is where the CPU went while the load ran.
type cpuUse struct {
	Machine         machineCPU // busy and total over every CPU
	Lastgood, Bench time.Duration
	LoadAvgAtStart  string
	LoadAvgAtEnd    string
	lastgoodPID     int
	startLastgood   time.Duration
	startBench      time.Duration
	startMachine    machineCPU
}

func startCPU(pid int) (*cpuUse, error) {
	u := &cpuUse{lastgoodPID: pid, LoadAvgAtStart: loadAverage(), startBench: selfCPU()}
	var err error
	if u.startMachine, err = readMachineCPU(); err != nil {
		return nil, err
	}
	if u.startLastgood, err = processCPU(pid); err != nil {
		return nil, err
	}
	return u, nil
}

// stop records the CPU used since startCPU.
func (u *cpuUse) stop() error {
	m, err := readMachineCPU()
	if err != nil {
		return err
	}
	lg, err := processCPU(u.lastgoodPID)
	if err != nil {
		return err
	}
	u.Machine = machineCPU{busy: m.busy - u.startMachine.busy, total: m.total - u.startMachine.total}
	u.Lastgood, u.Bench = lg-u.startLastgood, selfCPU()-u.startBench
	u.LoadAvgAtEnd = loadAverage()
	return nil
}
