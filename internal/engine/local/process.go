package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// outputWait is how long the log copier may keep reading after a replica's
// process group was killed; only a process that left the group can still
// hold the pipe open that long.
const outputWait = 2 * time.Second

// process is one run of a replica's command.
type process struct {
	cmd     *exec.Cmd
	pgid    int
	addr    string
	started time.Time
	exited  chan struct{} // closed once the process is reaped
	output  chan struct{} // closed once the log copier has finished
	outR    *os.File
	pidPath string
}

// launch starts one process for r: a fresh port, the expanded command, its
// output piped into log, a process record on disk.
func (e *Engine) launch(ctx context.Context, r *replica, log *logFile) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := replicaEnv(r.spec, port)
	argv := expandArgs(r.spec.Command, env)
	dir := e.workDir(r.spec)
	path, err := resolveProgram(argv[0], dir, pathOf(env))
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    environ(env),
		Dir:    dir,
		Stdout: outW, // an *os.File: the child writes into the pipe directly
		Stderr: outW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = e.spawner.start(ctx, cmd)
	outW.Close() // the child holds its own copy
	if err != nil {
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &process{
		cmd:     cmd,
		pgid:    cmd.Process.Pid,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		started: time.Now(),
		exited:  make(chan struct{}),
		output:  make(chan struct{}),
		outR:    outR,
		pidPath: r.pidPath,
	}
	go func() {
		defer close(p.output)
		copyLines(outR, log) // a log write error loses output, never the replica
	}()
	go func() {
		defer close(p.exited)
		cmd.Wait()
	}()
	e.mu.Lock()
	rec := processRecord{PGID: p.pgid, App: r.spec.App, Revision: r.spec.Revision, Replica: r.idLocked()}
	e.mu.Unlock()
	if err := writeRecord(p.pidPath, rec); err != nil {
		// Without a record a killed lastgood could leave this group
		// behind; refuse to run rather than risk it.
		e.terminate(p, 0)
		e.reap(p)
		return nil, err
	}
	return p, nil
}

// terminate sends SIGTERM to the process group, waits up to grace for the
// leader to exit, then sends SIGKILL to the group and waits for the leader.
func (e *Engine) terminate(p *process, grace time.Duration) {
	if grace > 0 {
		syscall.Kill(-p.pgid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
	}
	syscall.Kill(-p.pgid, syscall.SIGKILL)
	<-p.exited
}

// reap finishes a process whose leader has exited: it kills what is left of
// its group, lets the log copier drain the pipe, and removes the process
// record.
func (e *Engine) reap(p *process) {
	syscall.Kill(-p.pgid, syscall.SIGKILL) // ESRCH: nothing was left
	t := time.NewTimer(outputWait)
	defer t.Stop()
	select {
	case <-p.output:
	case <-t.C:
		p.outR.Close() // unblocks the copier
		<-p.output
	}
	p.outR.Close()
	os.Remove(p.pidPath)
}

// exitStatus describes how the process ended: "exit status 1",
// "signal: killed", and the exit code (-1 for a signal).
func (p *process) exitStatus() (string, int) {
	st := p.cmd.ProcessState
	if st == nil {
		return "unknown", -1
	}
	return st.String(), st.ExitCode()
}
