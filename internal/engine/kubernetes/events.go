package kubernetes

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxAnnouncements bounds the events waiting to be written as Kubernetes
// Events; beyond it they are dropped (they stay in lastgood's own log).
const maxAnnouncements = 256

type announcement struct {
	app      string
	revision int
	typ      string
	message  string
	at       time.Time
	// reason and warning, when set, are the Event's reason and type
	// instead of those the event type gives.
	reason  string
	warning bool
}

// Announce writes one of lastgood's decisions (a store event such as
// rollout.rolled-back) as a Kubernetes Event on the ReplicaSet of its
// revision, or on the Service <app> when that revision has none. It
// never blocks; it only reports rollout.* and revision.* events.
func (e *Engine) Announce(app string, revision int, typ, message string, at time.Time) {
	if !strings.HasPrefix(typ, "rollout.") && !strings.HasPrefix(typ, "revision.") {
		return
	}
	select {
	case e.events <- announcement{app: app, revision: revision, typ: typ, message: message, at: at}:
	default:
		e.cfg.Log.Warn("kubernetes: event dropped, too many waiting", "app", app, "type", typ)
	}
}

func (e *Engine) announce(ctx context.Context) {
	host, _ := os.Hostname()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-e.events:
			if err := e.writeEvent(ctx, a, host); err != nil && ctx.Err() == nil {
				e.cfg.Log.Warn("kubernetes: write event", "app", a.app, "type", a.typ, "err", err)
			}
		}
	}
}

func (e *Engine) writeEvent(ctx context.Context, a announcement, host string) error {
	e.mu.Lock()
	st := e.state[a.app]
	var ns string
	if st != nil {
		ns = st.namespace
	}
	w := e.watches[ns]
	e.mu.Unlock()
	if st == nil || w == nil {
		return nil // not an app of this engine
	}
	obj := corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: ns, Name: stableService(a.app)}
	if svc, err := w.svcList.Services(ns).Get(obj.Name); err == nil {
		obj.UID, obj.ResourceVersion = svc.UID, svc.ResourceVersion
	}
	if a.revision > 0 {
		if rs := e.replicaSet(w, ns, a.app, a.revision); rs != nil {
			obj = corev1.ObjectReference{Kind: "ReplicaSet", APIVersion: "apps/v1", Namespace: ns, Name: rs.Name, UID: rs.UID, ResourceVersion: rs.ResourceVersion}
		}
	}
	kind := corev1.EventTypeNormal
	if a.warning || strings.Contains(a.typ, "rolled-back") || strings.Contains(a.typ, "aborted") || strings.Contains(a.typ, "failed") || strings.Contains(a.typ, "breached") {
		kind = corev1.EventTypeWarning
	}
	why := a.reason
	if why == "" {
		why = reason(a.typ)
	}
	at := metav1.NewTime(a.at)
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: obj.Name + ".", Namespace: ns, Labels: map[string]string{LabelManagedBy: managedBy, LabelApp: a.app}},
		InvolvedObject:      obj,
		Reason:              why,
		Message:             a.message,
		Type:                kind,
		Source:              corev1.EventSource{Component: "lastgood"},
		FirstTimestamp:      at,
		LastTimestamp:       at,
		Count:               1,
		ReportingController: "lastgood.dev/lastgood",
		ReportingInstance:   host,
		Action:              a.typ,
	}
	if a.revision > 0 {
		ev.Labels[LabelRevision] = strconv.Itoa(a.revision)
	}
	return e.kube.create(ctx, e.kube.events(), ns, ev, &corev1.Event{})
}

// reason turns an event type into a Kubernetes reason:
// rollout.rolled-back → RolloutRolledBack.
func reason(typ string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(typ, func(r rune) bool { return r == '.' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
