package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

// The App resource (deploy/kubernetes/crd.yaml): a manifest as a
// Kubernetes object.
var appsResource = schema.GroupVersionResource{Group: "lastgood.dev", Version: "v1alpha1", Resource: "apps"}

const (
	appAPIVersion = "lastgood.dev/v1alpha1"
	appKind       = "App"
	// Finalizer is on every App lastgood has applied: deleting the App
	// deletes the app (as `lastgood delete --force`) before the object goes.
	Finalizer = "lastgood.dev/release"
	// PhaseInvalid and PhaseWaiting are the App phases that are not a
	// rollout's: a spec refused, a spec waiting for a rollout to end.
	PhaseInvalid = "Invalid"
	PhaseWaiting = "Waiting"
)

// Releaser is what the App watcher drives: the controller, through the
// same calls as `lastgood apply`, `status` and `delete`.
type Releaser interface {
	Apply(ctx context.Context, req controller.ApplyRequest) (controller.ApplyResult, error)
	Status(ctx context.Context, name string) (controller.AppStatus, error)
	Delete(ctx context.Context, name string, force bool, by string) (controller.DeleteResult, error)
}

// GitOps watches the App objects of the namespaces lastgood works in and
// applies a changed spec as `lastgood apply` would; it keeps every App's
// .status up to date with its rollout. Loops are avoided by generation:
// a spec is applied when metadata.generation differs from
// status.observedGeneration, and status writes (a subresource) do not
// change the generation. `lastgood apply` writes the spec and the
// observedGeneration of what it applied under the same per-app lock, so
// the watcher never applies it a second time.
type GitOps struct {
	e   *Engine
	r   Releaser
	dyn dynamic.Interface

	queue workqueue.TypedRateLimitingInterface[appKey]

	mu      sync.Mutex
	ctx     context.Context // Run's, once it started
	watched map[string]bool // namespaces whose Apps are watched
	wanted  []string        // namespaces to watch once Run starts
	where   map[string]string
	locks   map[string]*sync.Mutex
	off     string // why GitOps is off: the CRD is not installed
}

type appKey struct{ Namespace, Name string }

// GitOps returns the App watcher of the engine, driving r. Run it.
func (e *Engine) GitOps(r Releaser) *GitOps {
	g := &GitOps{
		e: e, r: r, dyn: e.dyn,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[appKey](),
			workqueue.TypedRateLimitingQueueConfig[appKey]{Name: "lastgood-apps"}),
		watched: map[string]bool{}, where: map[string]string{}, locks: map[string]*sync.Mutex{},
	}
	e.mu.Lock()
	e.onWatch = g.watchNamespace
	for ns := range e.watches {
		g.wanted = append(g.wanted, ns)
	}
	e.mu.Unlock()
	g.wanted = append(g.wanted, e.cfg.Namespace)
	return g
}

// Run checks that the CRD is installed (without it, GitOps is off and
// says so in the log), watches Apps until ctx ends and keeps their
// status. RBAC that forbids reading Apps is an error: serve stops.
func (g *GitOps) Run(ctx context.Context) error {
	ns := g.e.cfg.Namespace
	_, err := g.dyn.Resource(appsResource).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case apierrors.IsNotFound(err):
		g.mu.Lock()
		g.off = "the CRD apps.lastgood.dev is not installed"
		g.mu.Unlock()
		g.e.cfg.Log.Warn("kubernetes: GitOps is off: the CRD apps.lastgood.dev is not installed (kubectl apply -f deploy/kubernetes/crd.yaml)")
		<-ctx.Done()
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: lastgood may not list apps.lastgood.dev in namespace %s: %s", ns, forbidden(err))
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("kubernetes: list apps.lastgood.dev in namespace %s: %w", ns, err)
	case err != nil:
		return nil
	}
	g.mu.Lock()
	g.ctx = ctx
	wanted := g.wanted
	g.wanted = nil
	g.mu.Unlock()
	for _, ns := range wanted {
		g.watchNamespace(ns)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for g.work(ctx) {
		}
	})
	<-ctx.Done()
	g.queue.ShutDown()
	wg.Wait()
	return nil
}

// watchNamespace starts (once) the informer of the Apps of ns.
func (g *GitOps) watchNamespace(ns string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil {
		if !slices.Contains(g.wanted, ns) {
			g.wanted = append(g.wanted, ns)
		}
		return
	}
	if g.watched[ns] || g.off != "" {
		return
	}
	g.watched[ns] = true
	res := g.dyn.Resource(appsResource).Namespace(ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	queue := func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if m, ok := o.(metav1.Object); ok {
			g.mu.Lock()
			g.where[m.GetName()] = m.GetNamespace()
			g.mu.Unlock()
			g.queue.Add(appKey{m.GetNamespace(), m.GetName()})
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: queue, UpdateFunc: func(_, o any) { queue(o) }, DeleteFunc: queue,
	})
	go inf.RunWithContext(g.ctx)
}

// Changed says that something happened to an app (an event of lastgood's
// log): its App's status is brought up to date, and a spec that waited
// for a rollout to end is tried again.
func (g *GitOps) Changed(app string) {
	g.mu.Lock()
	ns, ok := g.where[app]
	g.mu.Unlock()
	if ok {
		g.queue.Add(appKey{ns, app})
	}
}

func (g *GitOps) work(ctx context.Context) bool {
	k, quit := g.queue.Get()
	if quit {
		return false
	}
	defer g.queue.Done(k)
	switch err := g.sync(ctx, k); {
	case err == nil:
		g.queue.Forget(k)
	case ctx.Err() != nil:
	default:
		g.e.cfg.Log.Warn("kubernetes: App", "namespace", k.Namespace, "app", k.Name, "err", err)
		g.queue.AddRateLimited(k)
	}
	return true
}

// lock serializes the watcher and `lastgood apply` on one app.
func (g *GitOps) lock(app string) func() {
	g.mu.Lock()
	l := g.locks[app]
	if l == nil {
		l = &sync.Mutex{}
		g.locks[app] = l
	}
	g.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// objectName is how errors name an App: the "file" of its manifest.
func objectName(ns, name string) string { return "App " + ns + "/" + name }

// sync converges one App: a deleted one deletes its app, a new
// generation is applied, and the status is brought up to date.
func (g *GitOps) sync(ctx context.Context, k appKey) error {
	defer g.lock(k.Name)()
	res := g.dyn.Resource(appsResource).Namespace(k.Namespace)
	obj, err := res.Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if obj.GetDeletionTimestamp() != nil {
		return g.deleted(ctx, obj)
	}
	st := readStatus(obj)
	gen := obj.GetGeneration()
	if gen == st.ObservedGeneration {
		next := g.status(ctx, k.Name, st)
		return g.writeStatus(ctx, obj, st, next)
	}
	text, err := specManifest(obj, g.e.cfg.Namespace)
	var ar controller.ApplyResult
	if err == nil {
		ar, err = g.r.Apply(ctx, controller.ApplyRequest{
			File: objectName(k.Namespace, k.Name), Manifest: text, Actor: objectName(k.Namespace, k.Name),
		})
	}
	var bad manifest.Errors
	switch {
	case errors.As(err, &bad):
		for _, fe := range bad {
			fe.File, fe.Line, fe.Column = objectName(k.Namespace, k.Name), 0, 0
			if fe.Field != "" {
				fe.Field = "spec." + fe.Field
			} else {
				fe.Field = "spec"
			}
		}
		next := g.status(ctx, k.Name, st)
		next.Phase, next.Message, next.ObservedGeneration = PhaseInvalid, bad.Error(), gen
		g.event(ctx, obj, corev1.EventTypeWarning, "InvalidSpec", fmt.Sprintf("generation %d refused, nothing changed: %s", gen, bad.Error()))
		return g.writeStatus(ctx, obj, st, next)
	case errors.Is(err, controller.ErrConflict):
		// A rollout is in progress: the spec waits for it to end (the
		// rollout's events bring the App back here).
		next := g.status(ctx, k.Name, st)
		next.Phase, next.Message = PhaseWaiting, err.Error()
		return g.writeStatus(ctx, obj, st, next)
	case errors.Is(err, controller.ErrInvalid):
		next := g.status(ctx, k.Name, st)
		next.Phase, next.Message, next.ObservedGeneration = PhaseInvalid, err.Error(), gen
		g.event(ctx, obj, corev1.EventTypeWarning, "InvalidSpec", fmt.Sprintf("generation %d refused, nothing changed: %v", gen, err))
		return g.writeStatus(ctx, obj, st, next)
	case err != nil:
		return err
	}
	if err := g.ensureFinalizer(ctx, obj); err != nil {
		return err
	}
	if obj, err = res.Get(ctx, k.Name, metav1.GetOptions{}); err != nil {
		return err
	}
	g.event(ctx, obj, corev1.EventTypeNormal, "Applied", fmt.Sprintf("generation %d: %s", gen, ar.Message))
	next := g.status(ctx, k.Name, AppStatus{}) // applied: no longer Invalid or Waiting
	next.Message, next.ObservedGeneration = ar.Message, gen
	return g.writeStatus(ctx, obj, readStatus(obj), next)
}

// deleted deletes the app of an App being deleted, as `lastgood delete
// --force` (a rollout in progress is aborted), then lets the object go.
func (g *GitOps) deleted(ctx context.Context, obj *unstructured.Unstructured) error {
	fins := obj.GetFinalizers()
	if !slices.Contains(fins, Finalizer) {
		return nil
	}
	_, err := g.r.Delete(ctx, obj.GetName(), true, objectName(obj.GetNamespace(), obj.GetName()))
	if err != nil && !errors.Is(err, controller.ErrNotFound) {
		return fmt.Errorf("delete app %s of its deleted App: %w", obj.GetName(), err)
	}
	obj.SetFinalizers(slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == Finalizer }))
	_, err = g.dyn.Resource(appsResource).Namespace(obj.GetNamespace()).Update(ctx, obj, metav1.UpdateOptions{FieldManager: managedBy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (g *GitOps) ensureFinalizer(ctx context.Context, obj *unstructured.Unstructured) error {
	if slices.Contains(obj.GetFinalizers(), Finalizer) {
		return nil
	}
	obj.SetFinalizers(append(obj.GetFinalizers(), Finalizer))
	_, err := g.dyn.Resource(appsResource).Namespace(obj.GetNamespace()).Update(ctx, obj, metav1.UpdateOptions{FieldManager: managedBy})
	return err
}

// specManifest is the manifest an App's spec holds, as YAML for
// manifest.Parse: its name defaults to the object's, and the app runs in
// the App's namespace.
func specManifest(obj *unstructured.Unstructured, defaultNamespace string) (string, error) {
	file := objectName(obj.GetNamespace(), obj.GetName())
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return "", manifest.Errors{{File: file, Field: "spec", Message: "must be an object: the app's manifest"}}
	}
	spec = runtime.DeepCopyJSON(spec)
	switch name, _ := spec["name"].(string); {
	case spec["name"] == nil:
		spec["name"] = obj.GetName()
	case name != obj.GetName():
		return "", manifest.Errors{{File: file, Field: "spec.name", Message: fmt.Sprintf("must be the App's name %s (metadata.name), got %v", obj.GetName(), spec["name"])}}
	}
	if ns := obj.GetNamespace(); ns != defaultNamespace {
		k, _ := spec["kubernetes"].(map[string]any)
		if k == nil {
			k = map[string]any{}
			spec["kubernetes"] = k
		}
		switch have, _ := k["namespace"].(string); {
		case k["namespace"] == nil:
			k["namespace"] = ns
		case have != ns:
			return "", manifest.Errors{{File: file, Field: "spec.kubernetes.namespace", Message: fmt.Sprintf("must be the App's namespace %s (or left out), got %v", ns, k["namespace"])}}
		}
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return "", manifest.Errors{{File: file, Field: "spec", Message: err.Error()}}
	}
	return string(b), nil
}

// AppStatus is the .status of an App.
type AppStatus struct {
	ObservedGeneration int64       `json:"observedGeneration"`
	Phase              string      `json:"phase"`
	StableRevision     int         `json:"stableRevision"`
	NewRevision        int         `json:"newRevision"`
	StableWeight       int         `json:"stableWeight"`
	NewWeight          int         `json:"newWeight"`
	Weights            []AppWeight `json:"weights"`
	Rollout            int         `json:"rollout"`
	LastVerdict        string      `json:"lastVerdict"`
	Reason             string      `json:"reason"`
	Message            string      `json:"message"`
}

// AppWeight is one revision's share of the traffic.
type AppWeight struct {
	Revision int `json:"revision"`
	Weight   int `json:"weight"`
}

func readStatus(obj *unstructured.Unstructured) AppStatus {
	var st AppStatus
	if raw, ok := obj.Object["status"]; ok {
		if b, err := json.Marshal(raw); err == nil {
			json.Unmarshal(b, &st)
		}
	}
	return st
}

// status is the App status of app now, keeping what the controller does
// not know from have: the observed generation, the last apply's message,
// and an Invalid or Waiting phase until the next apply.
func (g *GitOps) status(ctx context.Context, app string, have AppStatus) AppStatus {
	next := AppStatus{ObservedGeneration: have.ObservedGeneration, Message: have.Message, Weights: []AppWeight{}}
	if have.Phase == PhaseInvalid || have.Phase == PhaseWaiting {
		next.Phase = have.Phase
	}
	s, err := g.r.Status(ctx, app)
	if err != nil {
		if errors.Is(err, controller.ErrNotFound) && next.Phase == "" && have.ObservedGeneration > 0 {
			next.Phase = "Deleted"
		}
		return next
	}
	next.StableRevision = s.Stable
	for _, r := range s.Traffic {
		if r.Weight > 0 {
			next.Weights = append(next.Weights, AppWeight{Revision: r.Revision, Weight: r.Weight})
		}
		if r.Revision == s.Stable {
			next.StableWeight += r.Weight
		}
	}
	if ro := s.Rollout; ro != nil {
		if next.Phase == "" {
			next.Phase = ro.Phase
		}
		next.NewRevision, next.Rollout = ro.To, ro.Number
		for _, r := range s.Traffic {
			if r.Revision == ro.To {
				next.NewWeight += r.Weight
			}
		}
		var last time.Time
		for _, c := range ro.Checks {
			if c.At.After(last) || next.LastVerdict == "" {
				last, next.LastVerdict, next.Reason = c.At, string(c.Verdict), c.Check+": "+c.Reason
			}
		}
		if next.LastVerdict == "" && ro.Done() {
			next.LastVerdict, next.Reason = ro.Phase, ro.Reason
		}
	} else if next.Phase == "" && s.Stable > 0 {
		next.Phase = store.PhasePromoted
		next.NewRevision, next.NewWeight = s.Stable, next.StableWeight
	}
	return next
}

// writeStatus patches the status subresource when next differs from
// have: a status write changes no generation, so it applies nothing.
func (g *GitOps) writeStatus(ctx context.Context, obj *unstructured.Unstructured, have, next AppStatus) error {
	if reflect.DeepEqual(normalStatus(have), normalStatus(next)) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": next})
	if err != nil {
		return err
	}
	_, err = g.dyn.Resource(appsResource).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: managedBy}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func normalStatus(s AppStatus) AppStatus {
	if s.Weights == nil {
		s.Weights = []AppWeight{}
	}
	return s
}

// event writes a Kubernetes Event on the App.
func (g *GitOps) event(ctx context.Context, obj *unstructured.Unstructured, typ, reason, message string) {
	host, _ := os.Hostname()
	now := metav1.Now()
	ns := obj.GetNamespace()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: obj.GetName() + ".", Namespace: ns, Labels: map[string]string{LabelManagedBy: managedBy, LabelApp: obj.GetName()}},
		InvolvedObject: corev1.ObjectReference{Kind: appKind, APIVersion: appAPIVersion, Namespace: ns, Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion()},
		Reason: reason, Message: message, Type: typ,
		Source:         corev1.EventSource{Component: "lastgood"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "lastgood.dev/lastgood", ReportingInstance: host, Action: reason,
	}
	if err := g.e.kube.create(ctx, g.e.kube.events(), ns, ev, &corev1.Event{}); err != nil && ctx.Err() == nil {
		g.e.cfg.Log.Warn("kubernetes: write event on App", "app", obj.GetName(), "err", err)
	}
}

// Applied writes the App of a manifest `lastgood apply` applied (req,
// which the controller accepted): the spec as written, the finalizer,
// and the status with the generation it applied, so that the watcher
// does not apply it again. A failure is logged: the apply happened.
func (g *GitOps) Applied(ctx context.Context, req controller.ApplyRequest, res controller.ApplyResult) {
	g.mu.Lock()
	off := g.off
	g.mu.Unlock()
	if off != "" {
		return
	}
	m, err := manifest.Parse(req.File, []byte(req.Manifest))
	if err != nil {
		return
	}
	if err := g.writeApp(ctx, m, req.Manifest, res); err != nil && ctx.Err() == nil {
		g.e.cfg.Log.Warn("kubernetes: write the App of an apply", "app", m.Name, "err", err)
	}
}

func (g *GitOps) writeApp(ctx context.Context, m *manifest.App, text string, ar controller.ApplyResult) error {
	var spec map[string]any
	if err := yaml.Unmarshal([]byte(text), &spec); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	spec = nil
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	ns := g.e.namespaceOf(m)
	g.watchNamespace(ns)
	g.mu.Lock()
	g.where[m.Name] = ns
	g.mu.Unlock()
	defer g.lock(m.Name)()
	res := g.dyn.Resource(appsResource).Namespace(ns)
	obj, err := res.Get(ctx, m.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": appAPIVersion, "kind": appKind,
			"metadata": map[string]any{"name": m.Name, "namespace": ns,
				"labels":     map[string]any{LabelManagedBy: managedBy, LabelApp: m.Name},
				"finalizers": []any{Finalizer}},
			"spec": spec,
		}}
		if obj, err = res.Create(ctx, obj, metav1.CreateOptions{FieldManager: managedBy}); err != nil {
			return err
		}
	case err != nil:
		return err
	case obj.GetDeletionTimestamp() != nil:
		return fmt.Errorf("its App is being deleted")
	default:
		if !reflect.DeepEqual(obj.Object["spec"], spec) || !slices.Contains(obj.GetFinalizers(), Finalizer) {
			obj.Object["spec"] = spec
			if !slices.Contains(obj.GetFinalizers(), Finalizer) {
				obj.SetFinalizers(append(obj.GetFinalizers(), Finalizer))
			}
			if obj, err = res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: managedBy}); err != nil {
				return err
			}
		}
	}
	have := readStatus(obj)
	next := g.status(ctx, m.Name, AppStatus{})
	next.ObservedGeneration, next.Message = obj.GetGeneration(), ar.Message
	return g.writeStatus(ctx, obj, have, next)
}

// Deleted deletes the App of an app `lastgood delete` deleted; its
// finalizer then finds the app already gone.
func (g *GitOps) Deleted(ctx context.Context, app string) {
	g.mu.Lock()
	ns, ok := g.where[app]
	off := g.off
	g.mu.Unlock()
	if !ok || off != "" {
		return
	}
	err := g.dyn.Resource(appsResource).Namespace(ns).Delete(ctx, app, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		g.e.cfg.Log.Warn("kubernetes: delete the App of a deleted app", "app", app, "err", err)
	}
}
