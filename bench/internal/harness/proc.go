package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory is a process's resident set, from /proc/<pid>/status.
type Memory struct {
	RSS, HWM int64 // bytes: VmRSS and VmHWM (the peak)
}

// ReadMemory reads a process's VmRSS and VmHWM.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("pid %d %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m, sc.Err()
}

// statFields returns the fields of /proc/<pid>/stat after "pid (comm)",
// starting with the state; comm may hold spaces and parentheses.
func statFields(pid string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])), nil
}

// Children returns the pids whose parent is pid: lastgood's replicas.
func Children(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(e.Name())
		if err != nil {
			continue // exited meanwhile
		}
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids, nil
}

// Alive reports which of pids still exist (and are not zombies).
func Alive(pids []int) []int {
	var left []int
	for _, p := range pids {
		fields, err := statFields(strconv.Itoa(p))
		if err == nil && len(fields) > 0 && fields[0] != "Z" {
			left = append(left, p)
		}
	}
	return left
}
