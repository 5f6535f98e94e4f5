// Package resources measures what a process group uses on this machine —
// resident memory, CPU time and open file descriptors — by reading /proc,
// and turns successive samples into rates. The local engine runs every
// replica in its own process group, so one group is one replica with
// everything it started.
//
// Sample and SampleGroups read the kernel's current figures; Meter is pure
// (the caller passes the time) and turns two samples into a CPU rate.
// Linux only: elsewhere every sample fails because /proc is missing.
package resources

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ErrGone means no live process is in the group: it has exited (a zombie
// waiting to be reaped counts as exited) or never existed.
var ErrGone = errors.New("process group has no live process")

// Usage is what the live processes of one process group use at one instant,
// summed over the processes.
type Usage struct {
	// Processes is the number of live (not zombie) processes in the group.
	Processes int
	// RSS is resident memory in bytes (resident pages × page size, from
	// /proc/<pid>/statm). A page shared by two processes of the group is
	// counted twice.
	RSS int64
	// CPU is user + system time consumed so far by the live processes (all
	// their threads), at the kernel's accounting granularity of one clock
	// tick (10ms). Time of processes that have exited is not in it.
	CPU time.Duration
	// FDs is the number of open file descriptors (entries of
	// /proc/<pid>/fd).
	FDs int
}

// procRoot is where the proc filesystem is mounted.
const procRoot = "/proc"

// Sample returns the usage of process group pgid, or ErrGone when the group
// has no live process. A process that exits during the scan is left out.
func Sample(pgid int) (Usage, error) {
	all, err := SampleGroups(pgid)
	if err != nil {
		return Usage{}, err
	}
	u, ok := all[pgid]
	if !ok {
		return Usage{}, fmt.Errorf("sample process group %d: %w", pgid, ErrGone)
	}
	return u, nil
}

// SampleGroups samples several process groups in one scan of /proc, which
// is cheaper than one Sample per group. Groups with no live process are
// absent from the result.
func SampleGroups(pgids ...int) (map[int]Usage, error) {
	want := make(map[int]bool, len(pgids))
	for _, g := range pgids {
		if g > 0 {
			want[g] = true
		}
	}
	out := make(map[int]Usage, len(want))
	if len(want) == 0 {
		return out, nil
	}
	pids, err := listPIDs()
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		p, err := readProcess(pid, want)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return nil, err
		}
		u := out[p.pgrp]
		u.Processes++
		u.RSS += p.rss
		u.CPU += p.cpu
		u.FDs += p.fds
		out[p.pgrp] = u
	}
	return out, nil
}

// listPIDs returns the ids of every process (thread group) in /proc.
func listPIDs() ([]int, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
