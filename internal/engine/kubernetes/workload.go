package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// Scale asks for n pods of a revision and returns at once; the ReplicaSet
// <app>-<revision> is created, scaled, or (n = 0) deleted in the
// background. The app's Services are made with its first revision.
func (e *Engine) Scale(ctx context.Context, w controller.Workload, n int) error {
	if w.Manifest == nil {
		return fmt.Errorf("revision %d of %s has no manifest", w.Revision, w.App)
	}
	ns := e.namespaceOf(w.Manifest)
	if _, err := e.watch(ctx, ns); err != nil {
		return err
	}
	e.mu.Lock()
	a := e.appLocked(w.App)
	a.namespace = ns
	a.desired[w.Revision] = desired{w: w, n: n}
	if newest := slices.Max(slices.Collect(maps.Keys(a.desired))); newest == w.Revision && n > 0 {
		a.manifest = w.Manifest
	}
	if a.manifest == nil {
		a.manifest = w.Manifest
	}
	if n > 0 {
		a.closed = false
	}
	e.mu.Unlock()
	e.queue.Add(key{App: w.App, Revision: w.Revision})
	if n > 0 {
		e.queue.Add(key{App: w.App}) // the Services exist from the first revision on
	}
	return nil
}

// syncRevision converges one revision's ReplicaSet with what Scale asked
// (or, for a StatefulSet, the app's StatefulSet).
func (e *Engine) syncRevision(ctx context.Context, app string, rev int) error {
	e.mu.Lock()
	a := e.state[app]
	if a != nil && a.manifest != nil && kubernetesOf(a.manifest).Workload == manifest.WorkloadStatefulSet {
		e.mu.Unlock()
		return e.syncStatefulSet(ctx, app)
	}
	var d desired
	var ok bool
	var ns, adoptedHash string
	if a != nil {
		d, ok = a.desired[rev]
		ns = a.namespace
		for h, to := range a.adopted {
			if to == rev {
				adoptedHash = h
			}
		}
	}
	e.mu.Unlock()
	if a == nil {
		return nil
	}
	w, err := e.watch(ctx, ns)
	if err != nil {
		return err
	}
	rs := e.replicaSet(w, ns, app, rev)
	if rs == nil && adoptedHash != "" {
		// adopted, and the informer has not seen the new label yet
		sets, _ := w.setList.ReplicaSets(ns).List(labels.SelectorFromSet(labels.Set{LabelApp: app, LabelHash: adoptedHash}))
		if len(sets) > 0 {
			rs = sets[0]
		}
	}
	switch {
	case !ok:
		return nil // never asked about: not ours to change
	case d.n == 0 && rs == nil:
		e.mu.Lock()
		if cur, still := a.desired[rev]; still && cur.n == 0 {
			delete(a.desired, rev)
		}
		e.mu.Unlock()
		return nil
	case d.n == 0:
		if rs.DeletionTimestamp != nil {
			return nil
		}
		bg := metav1.DeletePropagationBackground
		err := e.kube.delete(ctx, e.kube.replicaSets(), ns, rs.Name, metav1.DeleteOptions{
			PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &rs.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case rs == nil:
		var want *appsv1.ReplicaSet
		var err error
		if fromDeployment(d.w.Manifest) {
			want, err = e.adoptedReplicaSet(ctx, ns, d.w, d.n)
		} else {
			want, err = e.buildReplicaSet(d.w, d.n)
		}
		if err != nil {
			return err
		}
		if err := e.ensureCopies(ctx, ns, d.w); err != nil {
			return err
		}
		err = e.kube.create(ctx, e.kube.replicaSets(), ns, want, &appsv1.ReplicaSet{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("replicaset %s/%s exists but is not lastgood's revision %d of %s (labels %s=%s, %s=%s, %s=%s)",
				ns, want.Name, rev, app, LabelManagedBy, managedBy, LabelApp, app, LabelRevision, strconv.Itoa(rev))
		}
		return err
	case rs.Spec.Replicas == nil || int(*rs.Spec.Replicas) != d.n:
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, d.n)
		return e.kube.patch(ctx, e.kube.replicaSets(), ns, rs.Name, types.MergePatchType, patch, &appsv1.ReplicaSet{})
	}
	return e.retireDeployment(ctx, ns, d.w.Manifest, rs, d.n)
}

// replicaSet finds the ReplicaSet that runs a revision, by label: its name
// says the revision it was created for, which an undo may have changed.
func (e *Engine) replicaSet(w *namespaceWatch, ns, app string, rev int) *appsv1.ReplicaSet {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelApp: app, LabelRevision: strconv.Itoa(rev)})
	sets, err := w.setList.ReplicaSets(ns).List(sel)
	if err != nil || len(sets) == 0 {
		return nil
	}
	slices.SortFunc(sets, func(x, y *appsv1.ReplicaSet) int { return x.CreationTimestamp.Compare(y.CreationTimestamp.Time) })
	for _, rs := range sets {
		if rs.DeletionTimestamp == nil {
			return rs
		}
	}
	return sets[0]
}

// ReplicaSetName is the name of the ReplicaSet created for a revision.
func ReplicaSetName(app string, rev int) string { return app + "-" + strconv.Itoa(rev) }

// buildReplicaSet is the ReplicaSet of a revision: pods that run the
// image by its digest, with the manifest's probes, environment and pod
// annotations.
func (e *Engine) buildReplicaSet(w controller.Workload, n int) (*appsv1.ReplicaSet, error) {
	spec, err := podSpec(w)
	if err != nil {
		return nil, err
	}
	k := kubernetesOf(w.Manifest)
	hash, err := templateHash(w, spec, k.PodAnnotations)
	if err != nil {
		return nil, err
	}
	own := labels.Set{LabelManagedBy: managedBy, LabelApp: w.App, LabelRevision: strconv.Itoa(w.Revision)}
	podLabels := labels.Merge(own, labels.Set{LabelHash: hash})
	replicas := int32(n)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ReplicaSetName(w.App, w.Revision),
			Labels:      podLabels,
			Annotations: map[string]string{AnnotationCreatedFor: strconv.Itoa(w.Revision), "lastgood.dev/image": spec.Containers[0].Image},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			// The hash, not the revision, selects: an undo relabels a warm
			// ReplicaSet with its new revision number without replacing it.
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: w.App, LabelHash: hash}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: maps.Clone(k.PodAnnotations)},
				Spec:       spec,
			},
		},
	}, nil
}

// podSpec is the pod of a revision: one container running the image by
// its digest, with the manifest's probes, environment, config files and
// secrets.
func podSpec(w controller.Workload) (corev1.PodSpec, error) {
	m := w.Manifest
	ref, err := pinnedImage(w)
	if err != nil {
		return corev1.PodSpec{}, err
	}
	k := kubernetesOf(m)
	env := []corev1.EnvVar{
		{Name: "PORT", Value: strconv.Itoa(k.Port)},
		{Name: "LASTGOOD_APP", Value: w.App},
		{Name: "LASTGOOD_REVISION", Value: strconv.Itoa(w.Revision)},
	}
	for _, name := range slices.Sorted(maps.Keys(k.Env)) {
		env = append(env, corev1.EnvVar{Name: name, Value: k.Env[name]})
	}
	container := corev1.Container{
		Name:            "app",
		Image:           ref,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: int32(k.Port), Protocol: corev1.ProtocolTCP}},
		Env:             env,
		ReadinessProbe:  probe(m.Probes.Readiness, k.Port),
		LivenessProbe:   probe(m.Probes.Liveness, k.Port),
	}
	vols, mounts, err := podVolumes(w)
	if err != nil {
		return corev1.PodSpec{}, err
	}
	for _, c := range k.VolumeClaims {
		mounts = append(mounts, corev1.VolumeMount{Name: c.Name, MountPath: c.MountPath})
	}
	container.VolumeMounts = mounts
	return corev1.PodSpec{Containers: []corev1.Container{container}, Volumes: vols}, nil
}

// templateHash names a revision's pods uniquely: the pod spec, the
// annotations and the revision the ReplicaSet is created for, so two
// ReplicaSets of one app never select each other's pods.
func templateHash(w controller.Workload, spec corev1.PodSpec, annotations map[string]string) (string, error) {
	b, err := json.Marshal(struct {
		App         string            `json:"app"`
		Revision    int               `json:"revision"`
		Spec        corev1.PodSpec    `json:"spec"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}{w.App, w.Revision, spec, annotations})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:5]), nil
}

// pinnedImage is the image a revision runs: its repository at the digest
// pinned at apply.
func pinnedImage(w controller.Workload) (string, error) {
	d := w.Artifacts[PinImage]
	if d == "" {
		return "", fmt.Errorf("revision %d of %s has no pinned image digest", w.Revision, w.App)
	}
	return repository(w.Manifest.Image) + "@" + d, nil
}

// repository is an image reference without its tag or digest.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

func kubernetesOf(m *manifest.App) manifest.Kubernetes {
	if m.Kubernetes != nil {
		return *m.Kubernetes
	}
	return manifest.Kubernetes{Workload: manifest.WorkloadReplicaSet, Port: 8080}
}

// probe turns a manifest probe into the kubelet's.
func probe(p *manifest.Probe, port int) *corev1.Probe {
	if p == nil {
		return nil
	}
	out := &corev1.Probe{
		InitialDelaySeconds: int32(p.InitialDelay.D().Seconds()),
		PeriodSeconds:       max(1, int32(p.Period.D().Seconds())),
		TimeoutSeconds:      max(1, int32(p.Timeout.D().Seconds())),
		FailureThreshold:    int32(p.FailureThreshold),
		SuccessThreshold:    int32(p.SuccessThreshold),
	}
	if p.HTTP != "" {
		out.HTTPGet = &corev1.HTTPGetAction{Path: p.HTTP, Port: intstr.FromInt32(int32(port))}
	} else {
		out.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}
	}
	return out
}

// Adopt hands the warm ReplicaSet of revision from to revision to, whose
// content is the same (undo's fast path): the ReplicaSet, its template and
// its pods are relabelled; its name keeps the revision it was created for.
func (e *Engine) Adopt(app string, from, to int) error {
	ctx := context.Background()
	e.mu.Lock()
	a := e.state[app]
	if a != nil && a.manifest != nil && kubernetesOf(a.manifest).Workload == manifest.WorkloadStatefulSet {
		e.mu.Unlock()
		return e.adoptStateful(ctx, app, from, to)
	}
	var ns string
	var d desired
	var ok bool
	if a != nil {
		ns = a.namespace
		d, ok = a.desired[from]
	}
	e.mu.Unlock()
	if a == nil || !ok {
		return fmt.Errorf("adopt %s revision %d: no pods of it were asked for", app, from)
	}
	w, err := e.watch(ctx, ns)
	if err != nil {
		return err
	}
	rs := e.replicaSet(w, ns, app, from)
	if rs == nil || rs.DeletionTimestamp != nil {
		return fmt.Errorf("adopt %s revision %d: no ReplicaSet runs it", app, from)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}},"spec":{"template":{"metadata":{"labels":{%q:%q}}}}}`,
		LabelRevision, strconv.Itoa(to), LabelRevision, strconv.Itoa(to))
	e.mu.Lock()
	if a.adopted == nil {
		a.adopted = map[string]int{}
	}
	a.adopted[rs.Labels[LabelHash]] = to
	e.mu.Unlock()
	if err := e.kube.patch(ctx, e.kube.replicaSets(), ns, rs.Name, types.StrategicMergePatchType, patch, &appsv1.ReplicaSet{}); err != nil {
		e.mu.Lock()
		delete(a.adopted, rs.Labels[LabelHash])
		e.mu.Unlock()
		return fmt.Errorf("adopt %s revision %d: %w", app, from, err)
	}
	pods, err := w.podList.Pods(ns).List(labels.SelectorFromSet(rs.Spec.Selector.MatchLabels))
	if err != nil {
		return err
	}
	if err := e.handOver(ctx, a, d, ns, app, from, to, pods); err != nil {
		return err
	}
	e.queue.Add(key{App: app})
	return nil
}

// handOver relabels the pods of revision from as revision to and moves
// its desired state to to: the last step of adopting a warm revision, for
// a ReplicaSet and a StatefulSet alike.
func (e *Engine) handOver(ctx context.Context, a *appState, d desired, ns, app string, from, to int, pods []*corev1.Pod) error {
	podPatch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, LabelRevision, strconv.Itoa(to))
	for _, p := range pods {
		if err := e.kube.patch(ctx, e.kube.pods(), ns, p.Name, types.StrategicMergePatchType, podPatch, &corev1.Pod{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("adopt %s revision %d: pod %s: %w", app, from, p.Name, err)
		}
	}
	e.mu.Lock()
	d.w.Revision = to
	a.desired[to] = d
	delete(a.desired, from)
	e.mu.Unlock()
	return nil
}
