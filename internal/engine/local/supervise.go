package local

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Restart backoff: the first restart waits backoffMin, each further one
// twice as long up to backoffMax; a process that stayed up backoffReset
// starts the sequence again.
const (
	backoffMin   = 200 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = 60 * time.Second
)

// backoff is the wait before the restart that follows failures earlier
// consecutive failures.
func backoff(failures int) time.Duration {
	d := backoffMin
	for i := 0; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// outcome is how one run of a replica ended.
type outcome struct {
	stopped bool          // on purpose, or because the engine stops: do not restart
	uptime  time.Duration // how long the process ran
}

// supervise owns replica r from its first start until it is stopped, then
// removes it from the engine.
func (e *Engine) supervise(ctx context.Context, r *replica) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		e.removeLocked(r)
		e.mu.Unlock()
	}()
	var log *logFile
	defer func() {
		if log != nil {
			log.Close()
		}
	}()
	failures := 0
	for {
		var out outcome
		var err error
		if log == nil {
			log, err = openLog(r.logPath, e.cfg.LogLimit)
		}
		if err == nil {
			out, err = e.runOnce(ctx, r, log)
		}
		if out.stopped {
			return
		}
		if err != nil {
			e.startFailed(r, err)
		}
		if out.uptime >= backoffReset {
			failures = 0
		}
		delay := backoff(failures)
		failures++
		e.restarting(r, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.stop:
			t.Stop()
			e.stopped(r, "stopped while waiting to restart")
			return
		case <-ctx.Done():
			t.Stop()
			e.stopped(r, "engine stopped while waiting to restart")
			return
		}
		e.mu.Lock()
		r.restarts++
		e.mu.Unlock()
	}
}

// runOnce starts r's command and waits until the process exits, fails its
// liveness probe, or is stopped. An error means the process did not start.
func (e *Engine) runOnce(ctx context.Context, r *replica, log *logFile) (outcome, error) {
	p, err := e.launch(ctx, r, log)
	if err != nil {
		if ctx.Err() != nil {
			e.stopped(r, "engine stopped before the replica started")
			return outcome{stopped: true}, nil
		}
		return outcome{}, err
	}
	e.onStarted(r, p)

	probeCtx, cancelProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	livenessFailed := make(chan error, 1)
	e.startProbes(probeCtx, &probes, r, p, livenessFailed)
	stopProbes := func() {
		cancelProbes()
		probes.Wait()
	}

	select {
	case <-p.exited:
		stopProbes()
		e.reap(p)
		e.exited(r, p, log, "")
	case err := <-livenessFailed:
		stopProbes()
		e.livenessFailed(r, err)
		e.terminate(p, 0)
		e.reap(p)
		e.exited(r, p, log, "killed after failing its liveness probe")
	case <-r.stop:
		stopProbes()
		if e.cfg.Drain != nil {
			e.mu.Lock()
			snap := r.snapshotLocked()
			e.mu.Unlock()
			e.cfg.Drain(ctx, snap)
		}
		e.terminate(p, e.cfg.StopGrace)
		e.reap(p)
		e.stoppedProcess(r, p, "stopped")
		return outcome{stopped: true}, nil
	case <-ctx.Done():
		stopProbes()
		e.setStopping(r)
		e.terminate(p, e.cfg.StopGrace)
		e.reap(p)
		e.stoppedProcess(r, p, "stopped because the engine stops")
		return outcome{stopped: true}, nil
	}
	return outcome{uptime: time.Since(p.started)}, nil
}

// startProbes runs the readiness probe, and the liveness probe if the spec
// has one, against p until ctx ends.
func (e *Engine) startProbes(ctx context.Context, wg *sync.WaitGroup, r *replica, p *process, livenessFailed chan<- error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		runProbe(ctx, settings(r.spec.Readiness), e.probes, p.addr, false, func(passing bool, err error) {
			e.setReadiness(r, passing, err)
		})
	}()
	if r.spec.Liveness == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runProbe(ctx, settings(r.spec.Liveness), e.probes, p.addr, true, func(passing bool, err error) {
			if !passing {
				select {
				case livenessFailed <- err:
				default:
				}
			}
		})
	}()
}

// stopped records that r is stopped without a process running.
func (e *Engine) stopped(r *replica, msg string) {
	e.stoppedProcess(r, nil, msg)
}

func (e *Engine) stoppedProcess(r *replica, p *process, msg string) {
	data := map[string]any{}
	snap := e.update(r, func() {
		r.state = StateStopping
		r.pid, r.addr = 0, ""
		if p != nil {
			r.lastExit, _ = p.exitStatus()
			data["status"] = r.lastExit
		}
	})
	e.emit(e.event(snap, EventStopped, msg, data))
}

// update applies change to r under the engine lock, wakes Changed when the
// state moved, and returns the new snapshot.
func (e *Engine) update(r *replica, change func()) Replica {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := r.state
	change()
	if r.state != before {
		e.notify()
	}
	return r.snapshotLocked()
}

func (e *Engine) event(snap Replica, typ, msg string, data map[string]any) Event {
	return Event{
		Time: time.Now(), App: snap.App, Revision: snap.Revision, Replica: snap.ID,
		Type: typ, Message: msg, Data: data,
	}
}

func (e *Engine) onStarted(r *replica, p *process) {
	snap := e.update(r, func() {
		r.pid, r.addr, r.started = p.cmd.Process.Pid, p.addr, p.started
		if !r.stopRequested {
			r.state = StateStarting
		}
	})
	e.emit(e.event(snap, EventStarted, fmt.Sprintf("started pid %d on %s", snap.PID, snap.Addr),
		map[string]any{"pid": snap.PID, "addr": snap.Addr, "restarts": snap.Restarts}))
}

func (e *Engine) setStopping(r *replica) {
	e.update(r, func() { r.state = StateStopping })
}

func (e *Engine) setReadiness(r *replica, passing bool, err error) {
	changed := false
	snap := e.update(r, func() {
		if r.stopRequested {
			return
		}
		next := StateUnready
		if passing {
			next = StateReady
		}
		changed = r.state != next
		r.state = next
	})
	switch {
	case !changed:
	case passing:
		e.emit(e.event(snap, EventReady, "readiness probe passed", nil))
	default:
		e.emit(e.event(snap, EventUnready, "readiness probe failed: "+errString(err),
			map[string]any{"error": errString(err)}))
	}
}

func (e *Engine) livenessFailed(r *replica, err error) {
	snap := e.update(r, func() {})
	e.emit(e.event(snap, EventLivenessFailed, "liveness probe failed: "+errString(err),
		map[string]any{"error": errString(err)}))
}

// exited records a process that ended without being asked to.
func (e *Engine) exited(r *replica, p *process, log *logFile, why string) {
	status, code := p.exitStatus()
	uptime := time.Since(p.started)
	snap := e.update(r, func() {
		r.lastExit = status
		if why != "" {
			r.lastExit += "; " + why
		}
		r.pid, r.addr = 0, ""
		if !r.stopRequested {
			r.state = StateCrashed
		}
	})
	msg := fmt.Sprintf("exited (%s) after %s", status, uptime.Round(time.Millisecond))
	if why != "" {
		msg += ": " + why
	}
	e.emit(e.event(snap, EventExited, msg, map[string]any{
		"pid": p.cmd.Process.Pid, "status": status, "exitCode": code,
		"uptime": uptime.Seconds(), "logTail": log.lastLines(),
	}))
}

// startFailed records a process that could not be started.
func (e *Engine) startFailed(r *replica, err error) {
	snap := e.update(r, func() {
		r.lastExit = "start failed: " + err.Error()
		r.pid, r.addr = 0, ""
		if !r.stopRequested {
			r.state = StateCrashed
		}
	})
	e.emit(e.event(snap, EventExited, snap.LastExit, map[string]any{"error": err.Error(), "exitCode": -1}))
}

func (e *Engine) restarting(r *replica, delay time.Duration) {
	snap := e.update(r, func() {})
	if snap.State == StateStopping {
		return // the stop request wins; supervise sees it next
	}
	e.emit(e.event(snap, EventRestarting, fmt.Sprintf("restarting in %s", delay),
		map[string]any{"delay": delay.Seconds(), "restarts": snap.Restarts + 1}))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
