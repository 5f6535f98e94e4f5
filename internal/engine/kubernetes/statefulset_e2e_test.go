package kubernetes_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
)

const statefulManifest = `name: web
image: %s
replicas: 3
strategy:
  canary: {steps: [{setWeight: 33}, {pause: {for: %s}}]}
rollback: {progressDeadline: 2m, window: 1m}
kubernetes:
  workload: StatefulSet
  volumeClaims: [{name: data, size: 1Gi, mountPath: /data, storageClassName: %s}]
  env: {RELEASE: %q}
  podAnnotations: {%s}
`

// TestStatefulSetCanaryAndRollback: with workload: StatefulSet a canary
// is the partition of the StatefulSet's rolling update, a rollback makes
// the previous ControllerRevision current again and replaces the new
// pods with old ones, and the pods' PersistentVolumeClaims stay.
func TestStatefulSetCanaryAndRollback(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	lg := serveKubernetes(t, c)
	apps, err := appsclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Volumes for the claims, in a storage class of the test's own, which
	// the PersistentVolume controller binds (kwok runs no storage driver).
	for i := range 3 {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", c.Namespace, i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName:              c.Namespace,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + c.Namespace}},
			},
		}
		if _, err := c.Core.PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Core.PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{}) })
	}
	v := func(name, pause, release, annotations string) string {
		return lg.manifest(name, fmt.Sprintf(statefulManifest, reg+"/web:1", pause, c.Namespace, release, annotations))
	}
	sts := func() *appsv1.StatefulSet {
		t.Helper()
		s, err := apps.StatefulSets(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("statefulset web: %v", err)
		}
		return s
	}
	partition := func(s *appsv1.StatefulSet) int32 {
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			return *ru.Partition
		}
		return 0
	}
	// pods maps each pod web-<ordinal> to its revision and controller
	// revision, of pods that are ready and not being deleted.
	type pod struct{ revision, controllerRevision string }
	pods := func() map[string]pod {
		t.Helper()
		l, err := c.Core.Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "lastgood.dev/app=web"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]pod{}
		for _, p := range l.Items {
			ready := false
			for _, cond := range p.Status.Conditions {
				ready = ready || (cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue)
			}
			if ready && p.DeletionTimestamp == nil {
				out[p.Name] = pod{p.Labels[kubernetes.LabelRevision], p.Labels[appsv1.ControllerRevisionHashLabelKey]}
			}
		}
		return out
	}
	claims := func() map[string]string {
		t.Helper()
		l, err := c.Core.PersistentVolumeClaims(c.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range l.Items {
			if p.Status.Phase == corev1.ClaimBound {
				out[p.Name] = string(p.UID)
			}
		}
		return out
	}
	all := func(rev string) func() bool {
		return func() bool {
			ps := pods()
			return len(ps) == 3 && ps["web-0"].revision == rev && ps["web-1"].revision == rev && ps["web-2"].revision == rev
		}
	}

	// Revision 1: three pods, each with its bound claim.
	lg.must(0, "apply", "-f", v("v1.yaml", "1s", "one", ""), "--wait")
	kubernetes.WaitFor(t, time.Minute, "3 ready pods of revision 1", all("1"))
	kubernetes.WaitFor(t, time.Minute, "3 bound claims", func() bool { return len(claims()) == 3 })
	before := claims()
	if s := sts(); *s.Spec.Replicas != 3 || partition(s) != 0 || s.Labels[kubernetes.LabelApp] != "web" {
		t.Fatalf("statefulset after revision 1: replicas %d, partition %d, labels %v", *s.Spec.Replicas, partition(s), s.Labels)
	}
	first := pods()["web-0"].controllerRevision

	// Revision 2 crash-loops in its canary pod (the highest ordinal) and
	// is rolled back: the old template again, the same claims.
	lg.must(3, "apply", "-f", v("v2.yaml", "1m", "two", "lastgood.dev/test-fault: crash-loop"), "--wait")
	if s := lg.status("web"); s.Stable != 1 || s.Rollout == nil || s.Rollout.Trigger != "crashLoop" {
		t.Errorf("after the bad canary: %+v", s)
	}
	kubernetes.WaitFor(t, 2*time.Minute, "3 ready pods of revision 1 again", all("1"))
	for name, p := range pods() {
		if p.controllerRevision != first {
			t.Errorf("after the rollback %s runs controller revision %s, want %s (revision 1's)", name, p.controllerRevision, first)
		}
	}
	// The pods' label is the name of their ControllerRevision.
	var st appsv1.StatefulSetStatus
	kubernetes.WaitFor(t, time.Minute, "the StatefulSet's current revision is revision 1's", func() bool {
		s := sts()
		st = s.Status
		return partition(s) == 0 && st.UpdateRevision == first && st.CurrentRevision == first
	})
	if got := claims(); !maps.Equal(got, before) {
		t.Errorf("claims after the rollback %v, want %v (kept)", got, before)
	}

	// Revision 3: a good canary; during its pause one pod (web-2) runs it,
	// by the partition.
	lg.must(0, "apply", "-f", v("v3.yaml", "20s", "three", ""))
	kubernetes.WaitFor(t, time.Minute, "the canary: partition 2, web-2 on revision 3", func() bool {
		ps := pods()
		return partition(sts()) == 2 && ps["web-2"].revision == "3" && ps["web-0"].revision == "1" && ps["web-1"].revision == "1"
	})
	kubernetes.WaitFor(t, 2*time.Minute, "revision 3 promoted", func() bool {
		s := lg.status("web")
		return s.Stable == 3 && s.Rollout != nil && s.Rollout.Phase == "promoted"
	})
	kubernetes.WaitFor(t, 2*time.Minute, "3 ready pods of revision 3", all("3"))
	if s := sts(); partition(s) != 0 {
		t.Errorf("after the promotion the partition is %d, want 0", partition(s))
	}
	if got := claims(); !maps.Equal(got, before) {
		t.Errorf("claims after the promotion %v, want %v (kept)", got, before)
	}

	// Undo returns to revision 1's content (as revision 4): the pods are
	// replaced in order by revision 1's template, its ControllerRevision
	// current again, the claims kept.
	lg.must(0, "undo", "web")
	kubernetes.WaitFor(t, 2*time.Minute, "undo promoted", func() bool {
		s := lg.status("web")
		return s.Stable == 4 && s.Rollout != nil && s.Rollout.Phase == "promoted"
	})
	kubernetes.WaitFor(t, 2*time.Minute, "3 ready pods of revision 4", all("4"))
	env := kubectl(t, c, "get", "pods", "-l", "lastgood.dev/revision=4", "-o", `jsonpath={range .items[*]}{.spec.containers[0].env[?(@.name=="RELEASE")].value} {end}`)
	if f := strings.Fields(env); len(f) != 3 || f[0] != "one" || f[1] != "one" || f[2] != "one" {
		t.Errorf("after undo the pods run RELEASE=%q, want revision 1's (one)", env)
	}
	if got := claims(); !maps.Equal(got, before) {
		t.Errorf("claims after the undo %v, want %v (kept)", got, before)
	}

	// What a StatefulSet cannot do is refused, with nothing changed.
	bg := strings.Replace(fmt.Sprintf(statefulManifest, reg+"/web:1", "1s", c.Namespace, "four", ""),
		"  canary: {steps: [{setWeight: 33}, {pause: {for: 1s}}]}", "  blueGreen: {}", 1)
	code, stdout, stderr := lg.run("apply", "-f", lg.manifest("bg.yaml", bg))
	if code != 2 || !strings.Contains(stdout+stderr, "bg.yaml:5: strategy.blueGreen: is not possible with workload: StatefulSet") {
		t.Errorf("blue-green on a StatefulSet: exit %d, want 2:\n%s%s", code, stdout, stderr)
	}
	bigger := strings.Replace(fmt.Sprintf(statefulManifest, reg+"/web:1", "1s", c.Namespace, "four", ""), "size: 1Gi", "size: 2Gi", 1)
	code, stdout, stderr = lg.run("apply", "-f", lg.manifest("bigger.yaml", bigger))
	if code != 2 || !strings.Contains(stdout+stderr, "kubernetes.volumeClaims: cannot change for an existing StatefulSet") {
		t.Errorf("a changed claim: exit %d, want 2:\n%s%s", code, stdout, stderr)
	}
	if s := lg.status("web"); s.Stable != 4 {
		t.Errorf("a refused apply changed the app: %+v", s)
	}

	// delete removes the StatefulSet and its pods; the claims (the data)
	// stay, as Kubernetes keeps them.
	lg.must(0, "delete", "web")
	kubernetes.WaitFor(t, time.Minute, "nothing of web left but its claims", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "sts,pods,svc", "-l", "lastgood.dev/app=web", "-o", "name")) == ""
	})
	if got := claims(); !maps.Equal(got, before) {
		t.Errorf("claims after delete %v, want %v (kept)", got, before)
	}
}
