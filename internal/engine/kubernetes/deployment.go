package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// An app whose manifest names kubernetes.workloadRef takes over an
// existing Deployment. A revision without image runs the Deployment's pod
// template (pinned at apply by its digest, PinTemplate): that is how the
// first revision comes from the Deployment. Once a ReplicaSet of the app
// has all its pods ready, the Deployment is scaled to zero — never
// deleted, nor otherwise changed: it is not lastgood's.

const (
	// PinTemplate is the artifact key of an adopted Deployment's pod
	// template digest.
	PinTemplate = "workload-template"
	// AnnotationAdoptedBy marks a Deployment lastgood scaled to zero for
	// an app, and AnnotationAdoptedReplicas the replicas it had.
	AnnotationAdoptedBy       = "lastgood.dev/adopted-by"
	AnnotationAdoptedReplicas = "lastgood.dev/adopted-replicas"
)

func workloadRefOf(m *manifest.App) *manifest.WorkloadRef {
	if m == nil || m.Kubernetes == nil {
		return nil
	}
	return m.Kubernetes.WorkloadRef
}

// fromDeployment says whether a revision runs its Deployment's template.
func fromDeployment(m *manifest.App) bool { return m.Image == "" && workloadRefOf(m) != nil }

// templateDigest is the digest of a Deployment's pod template.
func templateDigest(t corev1.PodTemplateSpec) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// resolveDeployment checks that the Deployment exists and, for a revision
// that runs its template, pins the template's digest.
func (e *Engine) resolveDeployment(ctx context.Context, ns string, m *manifest.App, pins map[string]string, add func(field, format string, args ...any)) error {
	ref := workloadRefOf(m)
	if ref == nil {
		return nil
	}
	var d appsv1.Deployment
	err := e.kube.get(ctx, e.kube.deployments(), ns, ref.Name, &d)
	switch {
	case apierrors.IsNotFound(err):
		add("kubernetes.workloadRef.name", "Deployment %s does not exist in namespace %s; name the Deployment to take over", ref.Name, ns)
		return nil
	case apierrors.IsForbidden(err):
		add("kubernetes.workloadRef.name", "lastgood may not get Deployment %s: %v", ref.Name, forbidden(err))
		return nil
	case err != nil:
		return fmt.Errorf("kubernetes: get deployment %s/%s: %w", ns, ref.Name, err)
	}
	if d.Labels[LabelManagedBy] == managedBy {
		add("kubernetes.workloadRef.name", "Deployment %s is labelled %s=%s; lastgood adopts only workloads it did not make", ref.Name, LabelManagedBy, managedBy)
		return nil
	}
	if fromDeployment(m) {
		digest, err := templateDigest(d.Spec.Template)
		if err != nil {
			return err
		}
		pins[PinTemplate] = digest
	}
	return nil
}

// adoptedReplicaSet is the ReplicaSet of a revision that runs the
// Deployment's pod template: the template as pinned, with lastgood's
// labels beside the Deployment's (so the Deployment's Services select
// the pods), and the app's environment names.
func (e *Engine) adoptedReplicaSet(ctx context.Context, ns string, w controller.Workload, n int) (*appsv1.ReplicaSet, error) {
	ref := workloadRefOf(w.Manifest)
	var d appsv1.Deployment
	if err := e.kube.get(ctx, e.kube.deployments(), ns, ref.Name, &d); err != nil {
		return nil, fmt.Errorf("revision %d of %s runs the pod template of Deployment %s: %w", w.Revision, w.App, ref.Name, err)
	}
	digest, err := templateDigest(d.Spec.Template)
	if err != nil {
		return nil, err
	}
	if want := w.Artifacts[PinTemplate]; digest != want {
		return nil, fmt.Errorf("revision %d of %s runs the pod template of Deployment %s as adopted (%s), but the Deployment's template has changed since (%s)",
			w.Revision, w.App, ref.Name, want, digest)
	}
	tmpl := *d.Spec.Template.DeepCopy()
	spec := tmpl.Spec
	hash, err := templateHash(w, spec, tmpl.Annotations)
	if err != nil {
		return nil, err
	}
	own := labels.Set{LabelManagedBy: managedBy, LabelApp: w.App, LabelRevision: strconv.Itoa(w.Revision), LabelHash: hash}
	podLabels := labels.Merge(maps.Clone(tmpl.Labels), own)
	delete(podLabels, appsv1.DefaultDeploymentUniqueLabelKey) // never the Deployment's ReplicaSets'
	tmpl.Labels = podLabels
	replicas := int32(n)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: ReplicaSetName(w.App, w.Revision),
			// Only lastgood's labels: the Deployment's selector must not
			// match (it would claim the ReplicaSet).
			Labels:      own,
			Annotations: map[string]string{AnnotationCreatedFor: strconv.Itoa(w.Revision), "lastgood.dev/adopted-from": "Deployment/" + ref.Name},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: w.App, LabelHash: hash}},
			Template: tmpl,
		},
	}, nil
}

// retireDeployment scales the adopted Deployment to zero once rs, a
// ReplicaSet of the app, has all its n pods ready: lastgood's pods serve
// before the Deployment's go.
func (e *Engine) retireDeployment(ctx context.Context, ns string, m *manifest.App, rs *appsv1.ReplicaSet, n int) error {
	ref := workloadRefOf(m)
	if ref == nil || n == 0 || rs.Status.ReadyReplicas < int32(n) || rs.Status.ObservedGeneration < rs.Generation {
		return nil
	}
	var d appsv1.Deployment
	err := e.kube.get(ctx, e.kube.deployments(), ns, ref.Name, &d)
	if apierrors.IsNotFound(err) {
		return nil // gone: nothing to retire
	}
	if err != nil {
		return err
	}
	if (d.Spec.Replicas != nil && *d.Spec.Replicas == 0) || d.Annotations[AnnotationAdoptedBy] == m.Name {
		return nil // retired already (once: scaled up again since, it is the user's doing)
	}
	before := int32(1)
	if d.Spec.Replicas != nil {
		before = *d.Spec.Replicas
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q,%q:%q}},"spec":{"replicas":0}}`,
		AnnotationAdoptedBy, m.Name, AnnotationAdoptedReplicas, strconv.Itoa(int(before)))
	if err := e.kube.patch(ctx, e.kube.deployments(), ns, ref.Name, types.MergePatchType, patch, &appsv1.Deployment{}); err != nil {
		return fmt.Errorf("scale Deployment %s/%s to zero: %w", ns, ref.Name, err)
	}
	e.cfg.Log.Info("kubernetes: adopted deployment scaled to zero", "namespace", ns, "deployment", ref.Name, "app", m.Name, "replicaset", rs.Name)
	return nil
}

// NothingBefore refuses an undo past the revision that took over a
// Deployment.
func (e *Engine) NothingBefore(app string, rev int, m *manifest.App) string {
	ref := workloadRefOf(m)
	if ref == nil || !fromDeployment(m) {
		return ""
	}
	return fmt.Sprintf("revision %d is the pod template of Deployment %s, which lastgood took over (kubernetes.workloadRef); there is no revision before it to undo to. To go back to the Deployment itself, scale it up (kubectl scale deployment %s --replicas=N) and `lastgood delete %s`",
		rev, ref.Name, ref.Name, app)
}
