package harness

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

// MachineCPU is the whole machine's CPU time from /proc/stat.
type MachineCPU struct {
	Busy, Total time.Duration
}

func readMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("machine CPU: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var m MachineCPU
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return m, fmt.Errorf("machine CPU: %q: %w", line, err)
		}
		d := time.Duration(n) * clockTick
		m.Total += d
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += d
		}
	}
	return m, nil
}

// processCPU returns a process's own user+system CPU time from
// /proc/<pid>/stat (not its children's).
func processCPU(pid int) (time.Duration, error) {
	fields, err := statFields(strconv.Itoa(pid))
	if err != nil || len(fields) < 13 {
		return 0, fmt.Errorf("CPU of pid %d: %v", pid, err)
	}
	// Counting from the state (field 3), utime and stime are fields 14
	// and 15.
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

// LoadAverage returns the first three fields of /proc/loadavg.
func LoadAverage() string {
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

// CPUUse is where the CPU went while the load ran.
type CPUUse struct {
	Machine         MachineCPU // busy and total over every CPU
	Lastgood, Bench time.Duration
	LoadAvgAtStart  string
	LoadAvgAtEnd    string
	lastgoodPID     int
	startLastgood   time.Duration
	startBench      time.Duration
	startMachine    MachineCPU
}

// StartCPU starts measuring the CPU used by the machine, by lastgood (pid)
// and by the benchmark itself.
func StartCPU(pid int) (*CPUUse, error) {
	u := &CPUUse{lastgoodPID: pid, LoadAvgAtStart: LoadAverage(), startBench: selfCPU()}
	var err error
	if u.startMachine, err = readMachineCPU(); err != nil {
		return nil, err
	}
	if u.startLastgood, err = processCPU(pid); err != nil {
		return nil, err
	}
	return u, nil
}

// Stop records the CPU used since StartCPU.
func (u *CPUUse) Stop() error {
	m, err := readMachineCPU()
	if err != nil {
		return err
	}
	lg, err := processCPU(u.lastgoodPID)
	if err != nil {
		return err
	}
	u.Machine = MachineCPU{Busy: m.Busy - u.startMachine.Busy, Total: m.Total - u.startMachine.Total}
	u.Lastgood, u.Bench = lg-u.startLastgood, selfCPU()-u.startBench
	u.LoadAvgAtEnd = LoadAverage()
	return nil
}
