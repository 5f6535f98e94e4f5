package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/lastgood/lastgood/internal/incident"
)

// Bounds of the evidence gathered for an incident bundle.
const (
	maxGonePods     = 64 // last sights of deleted pods kept per app
	maxEvidencePods = 16
	maxLogPods      = 8
	logTailLines    = 100
	logLimitBytes   = 64 << 10
	logTimeout      = 5 * time.Second
	maxEvents       = 50
)

// podGone keeps the last sight of a deleted pod of lastgood's: a rollback
// deletes the failed revision's ReplicaSet, and its pods may be gone
// before the incident bundle is written.
func (e *Engine) podGone(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.state[p.Labels[LabelApp]]
	if a == nil {
		return
	}
	a.gone = append(a.gone, p.DeepCopy())
	if len(a.gone) > maxGonePods {
		a.gone = a.gone[len(a.gone)-maxGonePods:]
	}
}

// Evidence is what the cluster shows of a revision, for its incident
// bundle: its pods' statuses (the live ones, and the last sight of those
// already deleted), the Kubernetes Events of its ReplicaSet and pods, and
// the last lines of its failed containers from the API's log endpoint. A
// log that cannot be had is a Log with its Error: on a cluster whose nodes
// have no kubelet (kwok) there is none.
func (e *Engine) Evidence(ctx context.Context, app string, rev int) (*incident.EngineEvidence, []incident.Log) {
	e.mu.Lock()
	a := e.state[app]
	if a == nil {
		e.mu.Unlock()
		return nil, nil
	}
	ns := a.namespace
	w := e.watches[ns]
	adopted := maps.Clone(a.adopted)
	var gone []*corev1.Pod
	for _, p := range a.gone {
		if podRevision(p, adopted) == rev {
			gone = append(gone, p)
		}
	}
	evictions := slices.Clone(a.evictions)
	e.mu.Unlock()
	if w == nil {
		return nil, nil
	}
	ev := &incident.EngineEvidence{Engine: "kubernetes", Replicas: []incident.ReplicaStatus{}, Events: []incident.EngineEvent{}}
	rsName := ReplicaSetName(app, rev)
	if rs := e.replicaSet(w, ns, app, rev); rs != nil {
		rsName = rs.Name
	}

	live, _ := w.podList.Pods(ns).List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelApp: app}))
	var pods []*corev1.Pod
	seen := map[string]bool{}
	for _, p := range live {
		if podRevision(p, adopted) == rev {
			pods = append(pods, p)
			seen[p.Name] = true
		}
	}
	slices.SortFunc(pods, func(x, y *corev1.Pod) int { return strings.Compare(x.Name, y.Name) })
	nLive := len(pods)
	for i := len(gone) - 1; i >= 0; i-- { // the newest sight of each
		if p := gone[i]; !seen[p.Name] {
			pods = append(pods, p)
			seen[p.Name] = true
		}
	}
	if len(pods) > maxEvidencePods {
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("%d pods of revision %d; kept %d", len(pods), rev, maxEvidencePods))
		pods = pods[:maxEvidencePods]
	}
	for i, p := range pods {
		ev.Replicas = append(ev.Replicas, podStatus(p, i >= nLive))
	}
	for _, x := range evictions {
		if x.Revision == rev && !seen[x.Pod] {
			ev.Replicas = append(ev.Replicas, incident.ReplicaStatus{Name: x.Pod, Reason: x.Reason, Message: x.Message, Gone: true})
			seen[x.Pod] = true
		}
	}

	names := []string{rsName}
	for _, p := range pods {
		names = append(names, p.Name)
	}
	ev.Events, ev.Warnings = e.eventsOf(ctx, ns, names, ev.Warnings)

	var logs []incident.Log
	for i, p := range pods {
		if len(logs) >= maxLogPods {
			break
		}
		for _, c := range p.Status.ContainerStatuses {
			previous, failed := containerFailed(c)
			if !failed {
				continue
			}
			logs = append(logs, e.containerLog(ctx, ns, p.Name, c.Name, rev, previous, i >= nLive))
		}
	}
	return ev, logs
}

// podRevision is the revision a pod runs: its label, or the revision its
// ReplicaSet was handed to by Adopt; 0 when it has none.
func podRevision(p *corev1.Pod, adopted map[string]int) int {
	if to, ok := adopted[p.Labels[LabelHash]]; ok {
		return to
	}
	rev, err := revisionOf(p)
	if err != nil {
		return 0
	}
	return rev
}

// containerFailed says whether a container failed, and whether its log
// of interest is the previous run's (it restarted since).
func containerFailed(c corev1.ContainerStatus) (previous, failed bool) {
	switch {
	case c.RestartCount > 0 || c.LastTerminationState.Terminated != nil:
		return true, true
	case c.State.Terminated != nil && c.State.Terminated.ExitCode != 0:
		return false, true
	case c.State.Waiting != nil && slices.Contains(unpullable, c.State.Waiting.Reason):
		return false, false // it never ran: no log
	}
	return false, false
}

func podStatus(p *corev1.Pod, gone bool) incident.ReplicaStatus {
	s := incident.ReplicaStatus{Name: p.Name, Phase: string(p.Status.Phase), Reason: p.Status.Reason, Message: p.Status.Message, Gone: gone}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			s.Ready = true
		}
		cond := fmt.Sprintf("%s=%s", c.Type, c.Status)
		if c.Reason != "" {
			cond += " (" + c.Reason + ")"
		}
		s.Conditions = append(s.Conditions, cond)
	}
	if why := disruption(p); why != "" && s.Reason == "" {
		s.Reason = why
	}
	for _, c := range p.Status.ContainerStatuses {
		cs := incident.ContainerStatus{Name: c.Name, Ready: c.Ready, Restarts: int(c.RestartCount), State: containerState(c.State)}
		if t := c.LastTerminationState.Terminated; t != nil {
			cs.LastTermination = termination(t)
		} else if t := c.State.Terminated; t != nil {
			cs.LastTermination = termination(t)
		}
		s.Containers = append(s.Containers, cs)
	}
	return s
}

func containerState(st corev1.ContainerState) string {
	switch {
	case st.Waiting != nil:
		s := "waiting: " + st.Waiting.Reason
		if st.Waiting.Message != "" {
			s += ": " + shorten(st.Waiting.Message, 300)
		}
		return s
	case st.Terminated != nil:
		return fmt.Sprintf("terminated: %s (exit code %d)", st.Terminated.Reason, st.Terminated.ExitCode)
	case st.Running != nil:
		return "running"
	}
	return "unknown"
}

func termination(t *corev1.ContainerStateTerminated) *incident.Termination {
	out := &incident.Termination{Reason: t.Reason, ExitCode: int(t.ExitCode), Signal: int(t.Signal), Message: shorten(t.Message, 1000)}
	if !t.StartedAt.IsZero() {
		out.Started = &incident.Millis{Time: t.StartedAt.Time}
	}
	if !t.FinishedAt.IsZero() {
		out.Finished = &incident.Millis{Time: t.FinishedAt.Time}
	}
	return out
}

// eventsOf lists the Kubernetes Events of the named objects of a
// namespace, oldest first, at most maxEvents (the newest).
func (e *Engine) eventsOf(ctx context.Context, ns string, names []string, warnings []string) ([]incident.EngineEvent, []string) {
	out := []incident.EngineEvent{}
	for _, name := range names {
		var l corev1.EventList
		o := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(), Limit: maxEvents}
		if err := e.kube.list(ctx, e.kube.events(), ns, o, &l); err != nil {
			warnings = append(warnings, fmt.Sprintf("events of %s: %v", name, err))
			continue
		}
		for _, k := range l.Items {
			at := k.LastTimestamp.Time
			if at.IsZero() {
				at = k.EventTime.Time
			}
			if at.IsZero() {
				at = k.CreationTimestamp.Time
			}
			src := k.Source.Component
			if src == "" {
				src = k.ReportingController
			}
			out = append(out, incident.EngineEvent{At: incident.Millis{Time: at}, Type: k.Type, Reason: k.Reason,
				Object: strings.ToLower(k.InvolvedObject.Kind) + "/" + k.InvolvedObject.Name, Message: k.Message, Count: int(k.Count), Source: src})
		}
	}
	slices.SortStableFunc(out, func(x, y incident.EngineEvent) int { return x.At.Compare(y.At.Time) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, warnings
}

// containerLog reads the last lines of a container through the API's log
// endpoint (the API server asks the node's kubelet). It fails soft: the
// Log says why there are no lines.
func (e *Engine) containerLog(ctx context.Context, ns, pod, container string, rev int, previous, gone bool) incident.Log {
	l := incident.Log{Revision: rev, File: "pod/" + pod + "/" + container, Lines: []string{}}
	if previous {
		l.File += " (previous run)"
	}
	if gone {
		l.Error = "the pod was deleted before the bundle was written; its log went with it"
		return l
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	raw, err := e.kube.core.Get().Namespace(ns).Resource("pods").Name(pod).SubResource("log").
		Param("container", container).Param("previous", strconv.FormatBool(previous)).
		Param("tailLines", strconv.Itoa(logTailLines)).Param("limitBytes", strconv.Itoa(logLimitBytes)).
		DoRaw(ctx)
	if err != nil {
		why := err.Error()
		var st metav1.Status
		if json.Unmarshal(raw, &st) == nil && st.Message != "" {
			why = st.Message // the kubelet's words, which the status error hides
		}
		l.Error = "the API server gave no log (a cluster whose nodes run no kubelet, like kwok, has none): " + why
		return l
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	if len(raw) > 0 {
		for _, line := range bytes.Split(raw, []byte("\n")) {
			l.Lines = append(l.Lines, string(line))
		}
	}
	l.Truncated = len(raw) >= logLimitBytes || len(l.Lines) >= logTailLines
	return l
}
