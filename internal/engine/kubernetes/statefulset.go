package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// With kubernetes.workload: StatefulSet an app is one StatefulSet, <app>,
// whose pods keep their names and their PersistentVolumeClaims. Revisions
// are its pod templates: the newest revision asked to run is the
// template, and the pods of the older one are kept by the rolling
// update's partition. A canary of k pods is partition replicas-k (the
// pods with the highest ordinals run the new revision); a promotion is
// partition 0; a rollback makes the stable revision's template current
// again, which the StatefulSet controller finds among its
// ControllerRevisions, and it replaces the new pods, highest ordinal
// first, with the old template. PVCs stay: the StatefulSet controller
// never deletes them on a template change (nor does lastgood on delete).

// StatefulSetName is the StatefulSet of an app.
func StatefulSetName(app string) string { return app }

// syncStatefulSet converges an app's StatefulSet with what Scale asked of
// its revisions.
func (e *Engine) syncStatefulSet(ctx context.Context, app string) error {
	e.mu.Lock()
	a := e.state[app]
	if a == nil {
		e.mu.Unlock()
		return nil
	}
	ns := a.namespace
	var running []int
	for rev, d := range a.desired {
		if d.n > 0 {
			running = append(running, rev)
		}
	}
	slices.Sort(running)
	var newest, older desired
	if len(running) > 0 {
		newest = a.desired[running[len(running)-1]]
	}
	if len(running) > 1 {
		older = a.desired[running[len(running)-2]]
	}
	e.mu.Unlock()

	var have appsv1.StatefulSet
	err := e.kube.get(ctx, e.kube.statefulSets(), ns, StatefulSetName(app), &have)
	exists := err == nil
	if err != nil && !kerrors.IsNotFound(err) {
		return err
	}
	if exists && (have.Labels[LabelManagedBy] != managedBy || have.Labels[LabelApp] != app) {
		return fmt.Errorf("statefulset %s/%s exists but was not made by lastgood (no label %s=%s); lastgood leaves it alone: rename the app or remove the StatefulSet",
			ns, have.Name, LabelManagedBy, managedBy)
	}
	if newest.n == 0 { // nothing runs: the app was deleted
		if exists && have.DeletionTimestamp == nil {
			bg := metav1.DeletePropagationBackground
			err := e.kube.delete(ctx, e.kube.statefulSets(), ns, have.Name, metav1.DeleteOptions{
				PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &have.UID}})
			if err != nil && !kerrors.IsNotFound(err) {
				return err
			}
		}
		e.forgetStopped(app, nil)
		return nil
	}
	want, err := buildStatefulSet(newest.w, newest.n, older.n)
	if err != nil {
		return err
	}
	if !exists {
		if err := e.ensureCopies(ctx, ns, newest.w); err != nil {
			return err
		}
		if err := e.kube.create(ctx, e.kube.statefulSets(), ns, want, &appsv1.StatefulSet{}); err != nil {
			return err
		}
		e.forgetStopped(app, running)
		return nil
	}
	if !sameStatefulSpec(&have, want) {
		if err := e.ensureCopies(ctx, ns, newest.w); err != nil {
			return err
		}
		upd := have.DeepCopy()
		upd.Spec.Replicas = want.Spec.Replicas
		upd.Spec.Template = want.Spec.Template
		upd.Spec.UpdateStrategy = want.Spec.UpdateStrategy
		if err := e.kube.update(ctx, e.kube.statefulSets(), ns, have.Name, upd, &appsv1.StatefulSet{}); err != nil {
			return err
		}
	}
	e.forgetStopped(app, running)
	return e.replaceBroken(ctx, ns, app, running)
}

// replaceBroken deletes the pods of revisions no longer asked for that are
// not ready, so the StatefulSet controller makes them again from the
// current template: after a rollback it waits for ever on a pod of the
// bad template that never becomes ready (the "forced rollback" of the
// StatefulSet documentation). Ready pods are left to the rolling update,
// which replaces them in order.
func (e *Engine) replaceBroken(ctx context.Context, ns, app string, running []int) error {
	e.mu.Lock()
	w := e.watches[ns]
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	pods, err := w.podList.Pods(ns).List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelApp: app}))
	if err != nil {
		return err
	}
	for _, p := range pods {
		rev, err := revisionOf(p)
		if err != nil || slices.Contains(running, rev) || p.DeletionTimestamp != nil || replica(p, rev).Ready {
			continue
		}
		err = e.kube.delete(ctx, e.kube.pods(), ns, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !kerrors.IsNotFound(err) && !kerrors.IsConflict(err) {
			return fmt.Errorf("replace pod %s/%s of revision %d: %w", ns, p.Name, rev, err)
		}
	}
	return nil
}

// queueStateful queues the StatefulSet of a pod's app, if the app runs
// one: its broken pods may need replacing.
func (e *Engine) queueStateful(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	if p, ok := o.(*corev1.Pod); ok {
		app := p.Labels[LabelApp]
		e.mu.Lock()
		a := e.state[app]
		stateful := a != nil && a.manifest != nil && kubernetesOf(a.manifest).Workload == manifest.WorkloadStatefulSet
		e.mu.Unlock()
		if rev, err := revisionOf(p); stateful && err == nil {
			e.queue.Add(key{App: app, Revision: rev})
		}
	}
}

// forgetStopped drops the revisions asked to stop, other than those in
// running: a StatefulSet has no object per revision to delete.
func (e *Engine) forgetStopped(app string, running []int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.state[app]; a != nil {
		maps.DeleteFunc(a.desired, func(rev int, d desired) bool { return d.n == 0 && !slices.Contains(running, rev) })
	}
}

func sameStatefulSpec(have, want *appsv1.StatefulSet) bool {
	return have.Spec.Replicas != nil && *have.Spec.Replicas == *want.Spec.Replicas &&
		equality.Semantic.DeepDerivative(want.Spec.Template, have.Spec.Template) &&
		equality.Semantic.DeepDerivative(want.Spec.UpdateStrategy, have.Spec.UpdateStrategy)
}

// buildStatefulSet is an app's StatefulSet running n pods of revision w
// beside older pods of the previous revision: replicas from the
// manifest, the partition keeping replicas-n of the older ones.
func buildStatefulSet(w controller.Workload, n, older int) (*appsv1.StatefulSet, error) {
	spec, err := podSpec(w)
	if err != nil {
		return nil, err
	}
	k := kubernetesOf(w.Manifest)
	replicas := int32(n)
	partition := int32(0)
	if older > 0 {
		replicas = int32(max(w.Manifest.Replicas, n))
		partition = max(0, replicas-int32(n))
	}
	own := map[string]string{LabelManagedBy: managedBy, LabelApp: w.App}
	podLabels := labels.Merge(own, labels.Set{LabelRevision: strconv.Itoa(w.Revision)})
	var claims []corev1.PersistentVolumeClaim
	for _, c := range k.VolumeClaims {
		size, err := kresource.ParseQuantity(c.Size)
		if err != nil {
			return nil, fmt.Errorf("volume claim %s: size %q: %w", c.Name, c.Size, err)
		}
		pvc := corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: c.Name, Labels: maps.Clone(own)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}
		if c.StorageClassName != "" {
			pvc.Spec.StorageClassName = &c.StorageClassName
		}
		claims = append(claims, pvc)
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: StatefulSetName(w.App), Labels: maps.Clone(own)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: stableService(w.App),
			Selector:    &metav1.LabelSelector{MatchLabels: own},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: maps.Clone(k.PodAnnotations)},
				Spec:       spec,
			},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition},
			},
			VolumeClaimTemplates: claims,
		},
	}, nil
}

// adoptStateful hands the pods of revision from to revision to (same
// content): they are relabelled; the StatefulSet's template follows at
// the next sync, which the StatefulSet controller rolls out.
func (e *Engine) adoptStateful(ctx context.Context, app string, from, to int) error {
	e.mu.Lock()
	a := e.state[app]
	d, ok := a.desired[from]
	ns := a.namespace
	w := e.watches[ns]
	e.mu.Unlock()
	if !ok || w == nil {
		return fmt.Errorf("adopt %s revision %d: no pods of it were asked for", app, from)
	}
	pods, err := w.podList.Pods(ns).List(labels.SelectorFromSet(labels.Set{LabelApp: app, LabelRevision: strconv.Itoa(from)}))
	if err != nil {
		return err
	}
	if err := e.handOver(ctx, a, d, ns, app, from, to, pods); err != nil {
		return err
	}
	e.queue.Add(key{App: app, Revision: to})
	e.queue.Add(key{App: app})
	return nil
}

// statefulTemplate is the pod spec of an app's StatefulSet, if it has one
// (its copies are in use).
func (e *Engine) statefulTemplate(ctx context.Context, ns, app string) (corev1.PodSpec, bool) {
	var sts appsv1.StatefulSet
	if err := e.kube.get(ctx, e.kube.statefulSets(), ns, StatefulSetName(app), &sts); err != nil || sts.Labels[LabelManagedBy] != managedBy {
		return corev1.PodSpec{}, false
	}
	return sts.Spec.Template.Spec, true
}

// checkStateful refuses what a StatefulSet cannot do.
func checkStateful(m *manifest.App, prev *manifest.App, add func(field, format string, args ...any)) {
	k := kubernetesOf(m)
	if prev != nil && kubernetesOf(prev).Workload != k.Workload {
		add("kubernetes.workload", "cannot change from %s to %s for an existing app (delete it first)", kubernetesOf(prev).Workload, k.Workload)
		return
	}
	if k.Workload != manifest.WorkloadStatefulSet {
		return
	}
	if m.Strategy.BlueGreen != nil {
		add("strategy.blueGreen", "is not possible with workload: StatefulSet: its pods are one set of ordinals with their volumes, so two revisions cannot both run at full size; use a canary (the rolling update's partition) or rolling")
	}
	if prev != nil && !slices.EqualFunc(k.VolumeClaims, kubernetesOf(prev).VolumeClaims, func(x, y manifest.VolumeClaim) bool { return x == y }) {
		add("kubernetes.volumeClaims", "cannot change for an existing StatefulSet (Kubernetes forbids changing volumeClaimTemplates); delete the app first, its PVCs stay")
	}
}
