package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A process record, DataDir/run/<replica>.pid, names the process group of a
// running replica. It is written when the replica starts and removed when it
// is reaped, so a record left behind means the lastgood that wrote it died
// without cleaning up.
type processRecord struct {
	PGID     int    `json:"pgid"`
	App      string `json:"app"`
	Revision int    `json:"revision"`
	Replica  string `json:"replica"`
}

func writeRecord(path string, rec processRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode process record: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write process record: %w", err)
	}
	return nil
}

// lockRunDir takes an exclusive lock on DataDir/run so that two engines never
// share a data directory (the second one's sweep would kill the first one's
// replicas). The lock is released when the file is closed or the process
// dies.
func lockRunDir(runDir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(runDir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, runDir)
		}
		return nil, fmt.Errorf("lock %s: %w", runDir, err)
	}
	return f, nil
}

// sweep kills the process groups that an earlier engine recorded under
// runDir and removes the records. It is best effort: a group is killed only
// if one of its members still carries the app's LASTGOOD_APP in its
// environment, which guards against a process group id reused by an
// unrelated program. It returns the groups it killed.
func sweep(runDir string) ([]int, error) {
	names, err := filepath.Glob(filepath.Join(runDir, "*.pid"))
	if err != nil {
		return nil, fmt.Errorf("list process records: %w", err)
	}
	var killed []int
	var errs []error
	for _, name := range names {
		var rec processRecord
		b, err := os.ReadFile(name)
		if err == nil && json.Unmarshal(b, &rec) == nil && rec.PGID > 1 && groupIsOurs(rec.PGID, rec.App) {
			if err := syscall.Kill(-rec.PGID, syscall.SIGKILL); err == nil {
				killed = append(killed, rec.PGID)
			}
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove process record: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

// groupIsOurs reports whether a live process in group pgid has
// LASTGOOD_APP=app in its environment.
func groupIsOurs(pgid int, app string) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := []byte("LASTGOOD_APP=" + app)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, ok := processGroup(pid); !ok || g != pgid {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				return true
			}
		}
	}
	return false
}

// processGroup reads the process group of pid from /proc/<pid>/stat.
func processGroup(pid int) (int, bool) {
	fields, ok := statFields(pid)
	if !ok || len(fields) < 3 {
		return 0, false
	}
	g, err := strconv.Atoi(fields[2])
	return g, err == nil
}

// statFields returns the fields of /proc/<pid>/stat after the command name:
// state, ppid, pgrp, ...
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(s[i+1:]), true
}
