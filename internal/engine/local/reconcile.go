package local

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"
)

// replica is the engine's record of one replica. The fields below mu are
// guarded by Engine.mu; the others are fixed at creation.
type replica struct {
	spec    Spec // what it starts with, also after Adopt
	logPath string
	pidPath string
	stop    chan struct{} // closed when a stop on purpose is requested

	// guarded by Engine.mu
	app           string
	rev, index    int
	addr          string
	pid           int
	state         State
	restarts      int
	lastExit      string
	started       time.Time
	stopRequested bool
}

func (r *replica) idLocked() string { return fmt.Sprintf("%s-%d-%d", r.app, r.rev, r.index) }

func (r *replica) snapshotLocked() Replica {
	return Replica{
		ID: r.idLocked(), App: r.app, Revision: r.rev, Index: r.index,
		Addr: r.addr, PID: r.pid, State: r.state, Ready: r.state == StateReady,
		Restarts: r.restarts, LastExit: r.lastExit, Started: r.started, LogPath: r.logPath,
	}
}

// reconcileLocked starts and stops replicas until every desired revision has
// its count of replicas that are not stopping. It must be called with e.mu
// held, while Run runs.
func (e *Engine) reconcileLocked() {
	if e.closed || e.runCtx == nil {
		return
	}
	for key, d := range e.desired {
		var live []*replica
		used := make(map[int]bool)
		for _, r := range e.replicas {
			if r.app != key.app {
				continue
			}
			// A stopping or adopted replica still owns its log file and
			// process record, both named after the ID it started with.
			if r.rev == key.rev || r.spec.Revision == key.rev {
				used[r.index] = true
			}
			if r.rev == key.rev && !r.stopRequested {
				live = append(live, r)
			}
		}
		for i := len(live); i < d.n; i++ {
			e.startLocked(d.spec, nextIndex(used))
		}
		if extra := len(live) - d.n; extra > 0 {
			for _, r := range stopOrder(live)[:extra] {
				e.requestStopLocked(r)
			}
		}
		if d.n == 0 {
			delete(e.desired, key)
		}
	}
}

func nextIndex(used map[int]bool) int {
	for i := 0; ; i++ {
		if !used[i] {
			used[i] = true
			return i
		}
	}
}

// stopOrder sorts replicas by who is stopped first: not ready, then the
// highest index.
func stopOrder(rs []*replica) []*replica {
	out := append([]*replica(nil), rs...)
	sort.Slice(out, func(i, j int) bool {
		ri, rj := out[i].state == StateReady, out[j].state == StateReady
		if ri != rj {
			return !ri
		}
		return out[i].index > out[j].index
	})
	return out
}

func (e *Engine) startLocked(spec Spec, index int) {
	id := fmt.Sprintf("%s-%d-%d", spec.App, spec.Revision, index)
	r := &replica{
		spec:    spec,
		logPath: filepath.Join(e.cfg.DataDir, "logs", spec.App, fmt.Sprint(spec.Revision), id+".log"),
		pidPath: filepath.Join(e.runDir, id+".pid"),
		stop:    make(chan struct{}),
		app:     spec.App,
		rev:     spec.Revision,
		index:   index,
		state:   StateStarting,
	}
	e.replicas = append(e.replicas, r)
	e.wg.Add(1)
	go e.supervise(e.runCtx, r)
	e.notify()
}

func (e *Engine) requestStopLocked(r *replica) {
	r.stopRequested = true
	r.state = StateStopping
	close(r.stop)
	e.notify()
}

// removeLocked forgets a replica whose supervisor has finished.
func (e *Engine) removeLocked(r *replica) {
	for i, x := range e.replicas {
		if x == r {
			e.replicas = append(e.replicas[:i], e.replicas[i+1:]...)
			break
		}
	}
	e.notify()
}
