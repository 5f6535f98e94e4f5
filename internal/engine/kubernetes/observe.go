package kubernetes

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lastgood/lastgood/internal/controller"
)

// Replicas reports the pods of an app as the controller's replicas: a
// pod is ready when its Ready condition is true, stopping once it is being
// deleted; its restarts are its containers' restarts, its last exit how
// its containers last terminated ("OOMKilled (exit code 137)"), and a
// container that waits on an image it cannot pull makes it Unrunnable.
func (e *Engine) Replicas(app string) []controller.Replica {
	e.mu.Lock()
	ns := e.cfg.Namespace
	var adopted map[string]int
	stopped := map[int]bool{} // revisions asked to stop
	if a := e.state[app]; a != nil {
		ns = a.namespace
		adopted = a.adoptedHashes()
		for rev, d := range a.desired {
			if d.n == 0 {
				stopped[rev] = true
			}
		}
	}
	w := e.watches[ns]
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	pods, err := w.podList.Pods(ns).List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelApp: app}))
	if err != nil {
		return nil
	}
	live := liveHashes(w, ns, app)
	out := make([]controller.Replica, 0, len(pods))
	for _, p := range pods {
		rev, err := revisionOf(p)
		if err != nil {
			continue
		}
		if to, ok := adopted[p.Labels[LabelHash]]; ok {
			rev = to // relabelled by Adopt; the informer has not seen it yet
		}
		r := replica(p, rev)
		if h := p.Labels[LabelHash]; h != "" && (!live[h] || stopped[rev]) {
			// its ReplicaSet is asked to stop or is deleted: the pod goes
			// soon, so it is no longer a warm replica
			r.Stopping, r.State = true, "stopping"
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y controller.Replica) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// liveHashes are the pod-template hashes of an app's ReplicaSets that are
// not being deleted.
func liveHashes(w *namespaceWatch, ns, app string) map[string]bool {
	sets, _ := w.setList.ReplicaSets(ns).List(labels.SelectorFromSet(labels.Set{LabelApp: app}))
	live := map[string]bool{}
	for _, rs := range sets {
		if rs.DeletionTimestamp == nil {
			live[rs.Labels[LabelHash]] = true
		}
	}
	return live
}

// adoptedHashes maps the pod-template hash of every ReplicaSet handed to
// another revision by Adopt to that revision. e.mu is held.
func (a *appState) adoptedHashes() map[string]int {
	if len(a.adopted) == 0 {
		return nil
	}
	return a.adopted
}

func revisionOf(m metav1.Object) (int, error) {
	s := m.GetLabels()[LabelRevision]
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: label %s is %q, not a revision number", m.GetName(), LabelRevision, s)
	}
	return n, nil
}

// unpullable are the waiting reasons of a container whose image will not
// come, however long one waits.
var unpullable = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}

func replica(p *corev1.Pod, rev int) controller.Replica {
	r := controller.Replica{
		ID:       p.Name,
		Revision: rev,
		Addr:     p.Name,
		State:    strings.ToLower(string(p.Status.Phase)),
		Stopping: p.DeletionTimestamp != nil,
		Started:  p.CreationTimestamp.Time,
	}
	if p.Status.PodIP != "" {
		r.Addr = p.Status.PodIP
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			r.Ready = true
		}
	}
	var last *corev1.ContainerStateTerminated
	for _, c := range p.Status.ContainerStatuses {
		r.Restarts += int(c.RestartCount)
		if t := c.LastTerminationState.Terminated; t != nil && (last == nil || t.FinishedAt.After(last.FinishedAt.Time)) {
			last = t
		}
		if wt := c.State.Waiting; wt != nil {
			r.State = wt.Reason
			if slices.Contains(unpullable, wt.Reason) && r.Unrunnable == "" {
				r.Unrunnable = wt.Reason
				if wt.Message != "" {
					r.Unrunnable += ": " + wt.Message
				}
			}
		}
	}
	if last != nil {
		reason := last.Reason
		if reason == "" {
			reason = "exited"
		}
		r.LastExit = fmt.Sprintf("%s (exit code %d)", reason, last.ExitCode)
	}
	if kubeletEvicted(p) {
		// The node ran short of memory or disk, often because of this
		// revision: counted as a restart, toward the crash-loop rule.
		r.State, r.Ready = "Evicted", false
		r.Restarts++
		r.LastExit = "Evicted: " + shorten(p.Status.Message, 200)
	}
	if r.Stopping {
		r.State = "stopping"
		if why := disruption(p); why != "" {
			r.State = "evicted (" + why + ")"
		}
	}
	return r
}

// kubeletEvicted reports a pod the kubelet evicted for node pressure: it
// stays, Failed with reason Evicted, until its ReplicaSet goes.
func kubeletEvicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

// disruption is the reason of a pod's DisruptionTarget condition, set when
// something other than its ReplicaSet takes it away: EvictionByEvictionAPI
// (a drain, a descheduler), PreemptionByScheduler, DeletionByTaintManager,
// TerminationByKubelet; empty when there is none.
func disruption(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			if c.Reason == "" {
				return "DisruptionTarget"
			}
			return c.Reason
		}
	}
	return ""
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Scope places a revision for the Prometheus templates: the app's
// namespace and a regular expression of its pods' names. A ReplicaSet's
// pods are named <replicaset>-<5 characters>, the name before them cut
// to 58 characters; an adopted ReplicaSet keeps the name it was created
// with, which is the one matched.
func (e *Engine) Scope(app string, rev int) controller.Scope {
	e.mu.Lock()
	ns := e.cfg.Namespace
	if a := e.state[app]; a != nil {
		ns = a.namespace
	}
	w := e.watches[ns]
	e.mu.Unlock()
	name := ReplicaSetName(app, rev)
	if w != nil {
		if rs := e.replicaSet(w, ns, app, rev); rs != nil {
			name = rs.Name
		}
	}
	return controller.Scope{Namespace: ns, Pod: podPattern(name)}
}

// podPattern matches the names of the pods of the ReplicaSet name.
func podPattern(rs string) string {
	const maxBase = 63 - 5 // the API server's limit on a generated name's base
	base := rs + "-"
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return regexp.QuoteMeta(base) + "[a-z0-9]{5}"
}
