package resources

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// what sysconf(_SC_CLK_TCK) returns. It is 100 on every architecture Go
// supports on Linux; Go has no sysconf without cgo, so it is assumed.
const clockTick = 10 * time.Millisecond

// errSkip means a process is not wanted or vanished while it was read.
var errSkip = errors.New("skip process")

// process is one process's share of a group's usage.
type process struct {
	pgrp int
	rss  int64
	cpu  time.Duration
	fds  int
}

// readProcess reads pid when it is a live member of one of the wanted
// groups; otherwise (another group, a zombie, or gone during the read) it
// returns errSkip.
func readProcess(pid int, want map[int]bool) (process, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return process{}, vanished(pid, "stat", err)
	}
	p, state, err := parseStat(b)
	if err != nil {
		return process{}, fmt.Errorf("process %d: %w", pid, err)
	}
	if !want[p.pgrp] || state == 'Z' || state == 'X' {
		return process{}, errSkip
	}
	if b, err = os.ReadFile(dir + "/statm"); err != nil {
		return process{}, vanished(pid, "statm", err)
	}
	if p.rss, err = parseStatm(b); err != nil {
		return process{}, fmt.Errorf("process %d: %w", pid, err)
	}
	if p.fds, err = countFDs(dir + "/fd"); err != nil {
		return process{}, vanished(pid, "fd", err)
	}
	return p, nil
}

// vanished turns the error of a read that failed because the process exited
// into errSkip and wraps any other.
func vanished(pid int, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return errSkip
	}
	return fmt.Errorf("read /proc/%d/%s: %w", pid, what, err)
}

// parseStat reads the process group, the state and utime+stime from the
// contents of /proc/<pid>/stat (proc(5)). The command name in parentheses
// may hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (process, byte, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return process{}, 0, errors.New("malformed stat: no ')'")
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) ...
	f := strings.Fields(s[i+1:])
	if len(f) < 13 || len(f[0]) != 1 {
		return process{}, 0, fmt.Errorf("malformed stat: %d fields after the name", len(f))
	}
	var nums [3]int64
	for k, idx := range [3]int{2, 11, 12} {
		n, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return process{}, 0, fmt.Errorf("malformed stat field %d: %w", idx+3, err)
		}
		nums[k] = n
	}
	return process{pgrp: int(nums[0]), cpu: time.Duration(nums[1]+nums[2]) * clockTick}, f[0][0], nil
}

// parseStatm returns resident bytes from the contents of /proc/<pid>/statm
// (its second field, in pages).
func parseStatm(b []byte) (int64, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("malformed statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// countFDs counts the entries of a /proc/<pid>/fd directory.
func countFDs(dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(256)
		n += len(names)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return 0, err
		}
	}
}
