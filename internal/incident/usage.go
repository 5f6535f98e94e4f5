package incident

import (
	"time"

	"github.com/lastgood/lastgood/internal/signal/resources"
)

// Process is one running replica whose resources the recorder samples:
// its process group leader.
type Process struct {
	Revision int
	PID      int
}

// Usage is what one revision's replicas used at one sample, summed over
// its replicas (read from /proc by internal/signal/resources).
type Usage struct {
	At       Millis  `json:"at"`
	Revision int     `json:"revision"`
	Replicas int     `json:"replicas"`
	RSSBytes int64   `json:"rssBytes"`
	CPUCores float64 `json:"cpuCores"` // since the previous sample; 0 at a replica's first
	FDs      int     `json:"fds"`
}

// usage is one app's ring of resource samples.
type usage struct {
	points []Usage
	meters map[int]*resources.Meter // by process group
}

// sample reads every process's group and appends one point per revision.
func (u *usage) sample(at time.Time, procs []Process) {
	if u.meters == nil {
		u.meters = map[int]*resources.Meter{}
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		if p.PID > 0 {
			pids = append(pids, p.PID)
		}
	}
	if len(pids) == 0 {
		return
	}
	groups, err := resources.SampleGroups(pids...)
	if err != nil {
		return
	}
	byRev := map[int]*Usage{}
	var order []int
	for _, p := range procs {
		g, ok := groups[p.PID]
		if !ok {
			continue
		}
		m := u.meters[p.PID]
		if m == nil {
			m = &resources.Meter{}
			u.meters[p.PID] = m
		}
		rt := m.Observe(at, g)
		pt := byRev[p.Revision]
		if pt == nil {
			pt = &Usage{At: ms(at), Revision: p.Revision}
			byRev[p.Revision] = pt
			order = append(order, p.Revision)
		}
		pt.Replicas++
		pt.RSSBytes += rt.RSS
		pt.CPUCores += rt.CPU
		pt.FDs += rt.FDs
	}
	for pid := range u.meters {
		if _, ok := groups[pid]; !ok {
			delete(u.meters, pid)
		}
	}
	for _, rev := range order {
		u.points = append(u.points, *byRev[rev])
	}
	u.points = bounded(u.points)
}

// between returns copies of the points taken in [from, to].
func (u *usage) between(from, to time.Time) []Usage { return taken(u.points, from, to) }
