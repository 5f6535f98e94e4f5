package kubernetes

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// TestServiceSeenLateIsStillLastgoods: the informer watches only
// lastgood's Services and may not have seen one lastgood has just made.
// With a cache that has seen nothing (a stale one, by construction),
// ensureService finds its own Service through the API server and updates
// it, and still refuses one that lastgood did not make, leaving it as it
// was.
func TestServiceSeenLateIsStillLastgoods(t *testing.T) {
	c := NewTestCluster(t)
	e, err := New(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stale := &namespaceWatch{svcList: corelisters.NewServiceLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))}
	ports := []corev1.ServicePort{{Name: "http", Port: ServicePort}}

	ours := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{LabelManagedBy: managedBy, LabelApp: "web"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{LabelApp: "web", LabelRevision: "1"}, Ports: ports},
	}
	if _, err := c.Core.Services(c.Namespace).Create(ctx, ours, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelApp: "web", LabelRevision: "2"}
	if err := e.ensureService(ctx, stale, c.Namespace, "web", "web", want, 8080); err != nil {
		t.Fatalf("lastgood's own Service, not yet in the cache: %v", err)
	}
	got, err := c.Core.Services(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Selector[LabelRevision] != "2" {
		t.Errorf("selector = %v, want revision 2", got.Spec.Selector)
	}

	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-preview"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "other"}, Ports: ports},
	}
	if _, err := c.Core.Services(c.Namespace).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = e.ensureService(ctx, stale, c.Namespace, "web", "web-preview", want, 8080)
	if err == nil || !strings.Contains(err.Error(), "was not made by lastgood") {
		t.Fatalf("a Service lastgood did not make: err = %v, want it refused", err)
	}
	got, err = c.Core.Services(c.Namespace).Get(ctx, "web-preview", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Selector["app"] != "other" || got.Spec.Selector[LabelRevision] != "" {
		t.Errorf("the user's Service was changed: selector %v", got.Spec.Selector)
	}
}
