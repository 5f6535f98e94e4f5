package kubernetes

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// maxEvictions bounds the evictions an app remembers (for the incident
// bundle); the oldest go first.
const maxEvictions = 50

// Eviction is one pod of a revision taken away by an eviction.
type Eviction struct {
	Pod      string    `json:"pod"`
	Revision int       `json:"revision"`
	At       time.Time `json:"at"`
	// Reason is Evicted for the kubelet's node-pressure eviction, else the
	// reason of the pod's DisruptionTarget condition: EvictionByEvictionAPI,
	// PreemptionByScheduler, DeletionByTaintManager, …
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// Counted says the eviction counted as a restart of the revision
	// (toward the crash-loop rule): only the kubelet's evictions do.
	Counted bool `json:"counted"`
}

// podChanged notes the evictions among the pods the informer reports,
// once per pod: a Kubernetes Event PodEvicted on the revision's
// ReplicaSet says whether it counted against the revision, and the
// incident bundle keeps them. It queues a StatefulSet app's
// StatefulSet (queueStateful), then wakes the controller.
func (e *Engine) podChanged(o any) {
	defer e.notify()
	e.queueStateful(o)
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	ev := Eviction{Pod: p.Name, At: time.Now()}
	switch {
	case kubeletEvicted(p):
		ev.Reason, ev.Message, ev.Counted = "Evicted", shorten(p.Status.Message, 300), true
	case disruption(p) != "":
		ev.Reason = disruption(p)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget {
				ev.Message = shorten(c.Message, 300)
			}
		}
	default:
		return
	}
	rev, err := revisionOf(p)
	if err != nil {
		return
	}
	app := p.Labels[LabelApp]
	e.mu.Lock()
	a := e.state[app]
	if a == nil || a.evictedPods[p.UID] {
		e.mu.Unlock()
		return
	}
	if to, ok := a.adopted[p.Labels[LabelHash]]; ok {
		rev = to
	}
	ev.Revision = rev
	if a.evictedPods == nil {
		a.evictedPods = map[types.UID]bool{}
	}
	a.evictedPods[p.UID] = true
	a.evictions = append(a.evictions, ev)
	if len(a.evictions) > maxEvictions {
		a.evictions = a.evictions[len(a.evictions)-maxEvictions:]
	}
	if len(a.evictedPods) > 4*maxEvictions {
		a.evictedPods = map[types.UID]bool{p.UID: true} // a pod is evicted once; this only bounds memory
	}
	e.mu.Unlock()
	msg := fmt.Sprintf("pod %s of revision %d evicted (%s)", p.Name, rev, ev.Reason)
	if ev.Message != "" {
		msg += ": " + ev.Message
	}
	if ev.Counted {
		msg += "; counted as a restart of the revision (3 restarts of a new revision roll it back)"
	} else {
		msg += "; not counted against the revision (a disruption from outside it: a drain, a preemption, a taint)"
	}
	e.cfg.Log.Info("kubernetes: pod evicted", "app", app, "revision", rev, "pod", p.Name, "reason", ev.Reason, "counted", ev.Counted)
	select {
	case e.events <- announcement{app: app, revision: rev, typ: "pod.evicted", reason: "PodEvicted", warning: true, message: msg, at: ev.At}:
	default:
		e.cfg.Log.Warn("kubernetes: event dropped, too many waiting", "app", app, "type", "pod.evicted")
	}
}

// Evictions returns the evictions the engine saw of an app's revision,
// oldest first (all revisions when rev is 0).
func (e *Engine) Evictions(app string, rev int) []Eviction {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.state[app]
	if a == nil {
		return nil
	}
	var out []Eviction
	for _, ev := range a.evictions {
		if rev == 0 || ev.Revision == rev {
			out = append(out, ev)
		}
	}
	return out
}
