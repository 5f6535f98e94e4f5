package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerEnv is the variable every replica of a run carries (in run.env),
// with a value of the run's own: other programs on the machine, lastgood
// tests included, never match it.
const markerEnv = "KILLNINE_RUN"

// proc is a live process carrying the run's marker.
type proc struct {
	PID, PPID, PGID int
}

// marked returns every live (not zombie) process whose environment holds
// markerEnv=token.
func marked(token string) []proc {
	want := []byte(markerEnv + "=" + token)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !hasVar(env, want) {
			continue
		}
		if p, ok := stat(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

func hasVar(environ, kv []byte) bool {
	for _, v := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(v, kv) {
			return true
		}
	}
	return false
}

// stat reads a process's parent and group; ok is false for a process that
// is gone or a zombie (it has exited; only its parent has not reaped it).
func stat(pid int) (proc, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
	if len(f) < 3 || f[0] == "Z" {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, _ := strconv.Atoi(f[2])
	return proc{PID: pid, PPID: ppid, PGID: pgid}, true
}

// survivors waits up to limit for every marked process to be gone (the
// replicas of a killed lastgood die by Pdeathsig, asynchronously) and
// returns those still alive, after killing their process groups so that
// the next round starts clean.
func survivors(token string, limit time.Duration) []proc {
	deadline := time.Now().Add(limit)
	for {
		left := marked(token)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				syscall.Kill(-p.PGID, syscall.SIGKILL)
			}
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// strays returns the marked processes that are not children of lastgood
// pid: after a restart every replica must be the new process's own.
func strays(token string, pid int) []proc {
	var out []proc
	for _, p := range marked(token) {
		if p.PPID != pid {
			out = append(out, p)
		}
	}
	return out
}
