package local

import (
	"context"
	"os/exec"
	"runtime"
)

// spawner starts every child process from one goroutine locked to one OS
// thread.
//
// Pdeathsig is delivered when the *thread* that forked the child exits, not
// when the process does. The Go runtime runs goroutines on whatever thread is
// free, and it terminates a thread when a goroutine that locked it returns
// without unlocking. A child forked from such a thread would be killed long
// before lastgood ends. Forking only from a thread that lives as long as the
// engine makes Pdeathsig mean "lastgood died".
type spawner struct {
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	return &spawner{reqs: make(chan spawnRequest)}
}

// run serves start requests until ctx ends. It never unlocks its thread, so
// the runtime terminates the thread when run returns; by then every child
// has been reaped.
func (s *spawner) run(ctx context.Context) {
	runtime.LockOSThread()
	for {
		select {
		case req := <-s.reqs:
			req.done <- req.cmd.Start()
		case <-ctx.Done():
			return
		}
	}
}

// start starts cmd on the spawner's thread.
func (s *spawner) start(ctx context.Context, cmd *exec.Cmd) error {
	req := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}
