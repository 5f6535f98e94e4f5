package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/lastgood/lastgood/internal/controller"
)

// httpRoutes is the Gateway API resource lastgood sets weights on.
var httpRoutes = schema.GroupVersionResource{Group: gatewayv1.GroupName, Version: "v1", Resource: "httproutes"}

// The Services of an app.
func stableService(app string) string  { return app }
func canaryService(app string) string  { return app + "-canary" }
func previewService(app string) string { return app + "-preview" }

// Listen is a no-op: an app's Services are made with its first revision,
// in its namespace, and always answer on port 80.
func (e *Engine) Listen(key, addr string) error { return nil }

// Close deletes an app's Services (`lastgood delete`, or a first apply
// that failed); the engine forgets the app's traffic. A preview key is
// ignored. Services lastgood did not create are left alone.
func (e *Engine) Close(name string) {
	if strings.HasSuffix(name, "/preview") {
		return
	}
	e.mu.Lock()
	a := e.state[name]
	ns := e.cfg.Namespace
	if a != nil {
		ns = a.namespace
		a.table, a.stable, a.closed = nil, 0, true
	}
	w := e.watches[ns]
	e.mu.Unlock()
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, svc := range []string{stableService(name), canaryService(name), previewService(name)} {
		have, err := w.svcList.Services(ns).Get(svc)
		if err != nil || have.Labels[LabelManagedBy] != managedBy {
			continue
		}
		err = e.kube.delete(ctx, e.kube.services(), ns, svc, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			e.cfg.Log.Warn("kubernetes: delete service", "namespace", ns, "service", svc, "err", err)
		}
	}
	e.pruneCopies(ctx, nil, ns, name, func(int) bool { return true }) // the app is gone: all its copies
}

// WaitIdle returns at once: a pod being deleted is drained by Kubernetes
// (its endpoints go first, then its grace period).
func (e *Engine) WaitIdle(ctx context.Context, key, addr string) error { return nil }

// Route records an app's routing table and converges its Services (and
// HTTPRoute) in the background. A preview key is ignored: on Kubernetes
// the preview is always the Service <app>-preview.
func (e *Engine) Route(name string, t controller.Table) {
	if name == controller.PreviewKey(strings.TrimSuffix(name, "/preview")) {
		return
	}
	e.mu.Lock()
	a := e.appLocked(name)
	t.Routes = slices.Clone(t.Routes)
	a.table = &t
	e.mu.Unlock()
	e.queue.Add(key{App: name})
}

// split reads a table the way the Services need it: stable is the
// revision with the most weight (the lower one on a tie), canary another
// revision with weight, or 0.
func split(t *controller.Table, lastStable int) (stable, canary controller.Route) {
	if t == nil {
		return controller.Route{Revision: lastStable}, controller.Route{}
	}
	routes := slices.Clone(t.Routes)
	slices.SortFunc(routes, func(x, y controller.Route) int {
		if x.Weight != y.Weight {
			return y.Weight - x.Weight
		}
		return x.Revision - y.Revision
	})
	if len(routes) == 0 || routes[0].Weight == 0 {
		return controller.Route{Revision: lastStable}, controller.Route{}
	}
	stable = routes[0]
	for _, r := range routes[1:] {
		if r.Weight > 0 && r.Revision > canary.Revision {
			canary = r
		}
	}
	return stable, canary
}

// syncTraffic converges an app's Services and HTTPRoute with its latest
// table: <app> selects the stable revision (every ready pod of the app
// while a split without an HTTPRoute runs), <app>-canary the canary (or
// the newest revision), <app>-preview the newest revision.
func (e *Engine) syncTraffic(ctx context.Context, app string) error {
	e.mu.Lock()
	a := e.state[app]
	if a == nil || a.manifest == nil || a.closed {
		e.mu.Unlock()
		return nil
	}
	ns, m, table, last := a.namespace, a.manifest, a.table, a.stable
	newest := 0
	for rev, d := range a.desired {
		if d.n > 0 && rev > newest {
			newest = rev
		}
	}
	e.mu.Unlock()
	w, err := e.watch(ctx, ns)
	if err != nil {
		return err
	}
	stable, canary := split(table, last)
	if stable.Revision == 0 {
		stable.Revision = newest
	}
	k := kubernetesOf(m)
	route := ""
	if k.Traffic != nil {
		route = k.Traffic.HTTPRoute
	}
	sel := func(rev int) map[string]string {
		return map[string]string{LabelApp: app, LabelRevision: strconv.Itoa(rev)}
	}
	main := sel(stable.Revision)
	if canary.Revision != 0 && route == "" {
		main = map[string]string{LabelApp: app} // replica ratios: every ready pod
	}
	canaryRev := canary.Revision
	if canaryRev == 0 {
		canaryRev = newest
	}
	previewRev := max(newest, stable.Revision)
	for _, s := range []struct {
		name     string
		selector map[string]string
	}{
		{stableService(app), main},
		{canaryService(app), sel(canaryRev)},
		{previewService(app), sel(previewRev)},
	} {
		if err := e.ensureService(ctx, w, ns, app, s.name, s.selector, k.Port); err != nil {
			return err
		}
	}
	if route != "" {
		stableWeight, canaryWeight := 100, 0
		if canary.Revision != 0 {
			stableWeight, canaryWeight = stable.Weight, canary.Weight
		}
		if err := e.setWeights(ctx, ns, route, app, stableWeight, canaryWeight); err != nil {
			return err
		}
	}
	e.mu.Lock()
	if a := e.state[app]; a != nil && stable.Revision != 0 {
		a.stable = stable.Revision
	}
	e.mu.Unlock()
	return nil
}

// ensureService creates or updates one of an app's Services. A Service of
// that name that lastgood did not create is left alone, with an error.
func (e *Engine) ensureService(ctx context.Context, w *namespaceWatch, ns, app, name string, selector map[string]string, port int) error {
	ports := []corev1.ServicePort{{Name: "http", Port: ServicePort, TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP}}
	have, err := w.svcList.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: managedBy, LabelApp: app}},
			Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
		}
		err := e.kube.create(ctx, e.kube.services(), ns, svc, &corev1.Service{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The informer watches only lastgood's Services, and it may not
		// have seen one lastgood has just made: ask the API server whose
		// this one is.
		var live corev1.Service
		if err := e.kube.get(ctx, e.kube.services(), ns, name, &live); err != nil {
			return err
		}
		if live.Labels[LabelManagedBy] != managedBy || live.Labels[LabelApp] != app {
			return fmt.Errorf("service %s/%s exists but was not made by lastgood (no label %s=%s); lastgood leaves it alone: rename the app or remove the Service", ns, name, LabelManagedBy, managedBy)
		}
		have = &live
	} else if err != nil {
		return err
	}
	if maps.Equal(have.Spec.Selector, selector) && len(have.Spec.Ports) == 1 && have.Spec.Ports[0].TargetPort == ports[0].TargetPort {
		return nil
	}
	svc := have.DeepCopy()
	svc.Spec.Selector = selector
	svc.Spec.Ports = ports
	return e.kube.update(ctx, e.kube.services(), ns, name, svc, &corev1.Service{})
}

// setWeights sets, in every rule of an HTTPRoute, the weights of the
// backendRefs that name the app's stable and canary Services.
func (e *Engine) setWeights(ctx context.Context, ns, name, app string, stable, canary int) error {
	u, err := e.dyn.Resource(httpRoutes).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("httproute %s/%s: %w", ns, name, err)
	}
	var r gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
		return fmt.Errorf("httproute %s/%s: %w", ns, name, err)
	}
	changed := false
	for i := range r.Spec.Rules {
		for j := range r.Spec.Rules[i].BackendRefs {
			ref := &r.Spec.Rules[i].BackendRefs[j].BackendRef
			want := -1
			switch {
			case !isService(ref.BackendObjectReference):
			case string(ref.Name) == stableService(app):
				want = stable
			case string(ref.Name) == canaryService(app):
				want = canary
			}
			if want >= 0 && (ref.Weight == nil || int(*ref.Weight) != want) {
				w := int32(want)
				ref.Weight = &w
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&r)
	if err != nil {
		return err
	}
	_, err = e.dyn.Resource(httpRoutes).Namespace(ns).Update(ctx, &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{FieldManager: managedBy})
	return err
}

func isService(ref gatewayv1.BackendObjectReference) bool {
	return (ref.Group == nil || *ref.Group == "") && (ref.Kind == nil || *ref.Kind == "Service") && ref.Namespace == nil
}

// routeProblem says why an HTTPRoute cannot carry an app's canary
// weights, or "".
func (e *Engine) routeProblem(ctx context.Context, ns, name, app string) (string, error) {
	u, err := e.dyn.Resource(httpRoutes).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("HTTPRoute %s does not exist in namespace %s (or the Gateway API CRDs are not installed); create it with backendRefs to the Services %s and %s", name, ns, stableService(app), canaryService(app)), nil
	case err != nil:
		return "", err
	}
	var r gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
		return "", err
	}
	for _, rule := range r.Spec.Rules {
		var stable, canary bool
		for _, b := range rule.BackendRefs {
			if !isService(b.BackendObjectReference) {
				continue
			}
			stable = stable || string(b.Name) == stableService(app)
			canary = canary || string(b.Name) == canaryService(app)
		}
		if stable && canary {
			return "", nil
		}
	}
	return fmt.Sprintf("HTTPRoute %s/%s has no rule whose backendRefs name both Services %s and %s (in its own namespace); lastgood sets their weights", ns, name, stableService(app), canaryService(app)), nil
}
