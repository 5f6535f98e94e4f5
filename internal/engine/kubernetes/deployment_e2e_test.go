package kubernetes_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
)

// TestAdoptDeployment: lastgood takes over a Deployment without
// downtime. Its pod template is revision 1; lastgood's ReplicaSet is
// ready before the Deployment is scaled to zero, and the ready endpoints
// of the Service in front of the Deployment never drop to zero; an undo
// past revision 1 is refused, saying why.
func TestAdoptDeployment(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:2")
	lg := serveKubernetes(t, c)
	apps, err := appsclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discoveryclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The team's Deployment and the Service its clients use.
	three := int32(3)
	sel := map[string]string{"app": "shop"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &three,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "shop", Image: "registry.test/shop:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:   []corev1.EnvVar{{Name: "COLOR", Value: "blue"}},
				}}},
			},
		},
	}
	if _, err := apps.Deployments(c.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-front"},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := c.Core.Services(c.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slices := disc.EndpointSlices(c.Namespace)
	ready := map[string]int{} // EndpointSlice → its ready endpoints
	count := func(s *discoveryv1.EndpointSlice) int {
		n := 0
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				n++
			}
		}
		return n
	}
	total := func() int {
		n := 0
		for _, v := range ready {
			n += v
		}
		return n
	}
	kubernetes.WaitFor(t, time.Minute, "3 ready endpoints of shop-front", func() bool {
		l, err := slices.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=shop-front"})
		if err != nil {
			t.Fatal(err)
		}
		clear(ready)
		for i := range l.Items {
			ready[l.Items[i].Name] = count(&l.Items[i])
		}
		return total() == 3
	})

	// Watch every change of the Service's endpoints from here on; the
	// lowest count of ready endpoints seen must stay above zero.
	l, _ := slices.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=shop-front"})
	wch, err := slices.Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=shop-front", ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	lowest, changes := total(), 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range wch.ResultChan() {
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				delete(ready, s.Name)
			} else {
				ready[s.Name] = count(s)
			}
			lowest, changes = min(lowest, total()), changes+1
			mu.Unlock()
		}
	})
	// And the Deployment: when it is first seen at zero replicas,
	// lastgood's ReplicaSet must have all its pods ready.
	dw, err := apps.Deployments(c.Namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=shop"})
	if err != nil {
		t.Fatal(err)
	}
	var retiredEarly string
	retired := make(chan struct{})
	wg.Go(func() {
		for ev := range dw.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
				continue
			}
			rs, err := apps.ReplicaSets(c.Namespace).Get(ctx, "web-1", metav1.GetOptions{})
			if err != nil || rs.Status.ReadyReplicas < 3 {
				retiredEarly = "the Deployment was at zero before web-1 had 3 ready pods"
				if err == nil {
					retiredEarly += ": " + rs.Status.String()
				}
			}
			close(retired)
			return
		}
	})

	file := lg.manifest("web.yaml", "name: web\nreplicas: 3\nkubernetes:\n  workloadRef: {kind: Deployment, name: shop}\n")
	lg.must(0, "apply", "-f", file, "--wait")
	select {
	case <-retired:
	case <-time.After(time.Minute):
		t.Fatal("the Deployment was never scaled to zero")
	}
	if retiredEarly != "" {
		t.Error(retiredEarly)
	}
	got, err := apps.Deployments(c.Namespace).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Deployment is gone: %v", err)
	}
	if got.Annotations[kubernetes.AnnotationAdoptedBy] != "web" || got.Annotations[kubernetes.AnnotationAdoptedReplicas] != "3" {
		t.Errorf("the Deployment's annotations: %v", got.Annotations)
	}
	rs, err := apps.ReplicaSets(c.Namespace).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ct := rs.Spec.Template.Spec.Containers[0]
	if ct.Image != "registry.test/shop:1" || ct.Name != "shop" || len(ct.Env) != 1 || ct.Env[0].Value != "blue" {
		t.Errorf("web-1 runs %+v, want the Deployment's container", ct)
	}
	if l := rs.Spec.Template.Labels; l["app"] != "shop" || l[kubernetes.LabelRevision] != "1" {
		t.Errorf("web-1's pods are labelled %v, want the Deployment's labels and lastgood's", l)
	}
	if l := rs.Labels; l["app"] != "" || len(rs.OwnerReferences) != 0 {
		t.Errorf("web-1 is labelled %v, owned by %v: the Deployment could claim it", l, rs.OwnerReferences)
	}
	kubernetes.WaitFor(t, time.Minute, "the Deployment's pods gone", func() bool {
		l, err := c.Core.Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=shop,!lastgood.dev/app"})
		return err == nil && len(l.Items) == 0
	})
	kubernetes.WaitFor(t, time.Minute, "3 ready endpoints of shop-front, lastgood's pods", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total() == 3
	})
	mu.Lock()
	if lowest == 0 || changes == 0 {
		t.Errorf("during the handover shop-front's ready endpoints went down to %d (%d changes seen)", lowest, changes)
	}
	mu.Unlock()

	// Undo past revision 1: refused, saying why.
	code, stdout, stderr := lg.run("undo", "web")
	if code != 2 || !strings.Contains(stdout+stderr, "revision 1 is the pod template of Deployment shop, which lastgood took over") {
		t.Errorf("undo past revision 1: exit %d, want 2:\n%s%s", code, stdout, stderr)
	}

	// A release with an image of lastgood's; undo returns to the
	// Deployment's template, which stayed at zero replicas meanwhile.
	lg.manifest("web.yaml", "name: web\nreplicas: 3\nimage: "+reg+"/web:2\nkubernetes:\n  workloadRef: {kind: Deployment, name: shop}\n")
	lg.must(0, "apply", "-f", file, "--wait")
	lg.must(0, "undo", "web")
	kubernetes.WaitFor(t, time.Minute, "undo promoted", func() bool {
		s := lg.status("web")
		return s.Stable == 3 && s.Rollout != nil && s.Rollout.Phase == "promoted"
	})
	imgs := kubectl(t, c, "get", "pods", "-l", "lastgood.dev/revision=3", "-o", "jsonpath={.items[*].spec.containers[0].image}")
	if f := strings.Fields(imgs); len(f) != 3 || f[0] != "registry.test/shop:1" {
		t.Errorf("after undo revision 3 runs %q, want 3 × the Deployment's image", imgs)
	}
	if d, _ := apps.Deployments(c.Namespace).Get(ctx, "shop", metav1.GetOptions{}); d == nil || *d.Spec.Replicas != 0 {
		t.Errorf("the Deployment is no longer at zero: %v", d)
	}
	cancel()
	wg.Wait()
}
