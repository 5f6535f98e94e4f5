// Package kubernetes is lastgood's Kubernetes engine: it runs each live
// revision of an app as its own ReplicaSet (<app>-<revision>) and moves
// traffic with the Services <app>, <app>-canary and <app>-preview and,
// when the manifest names one, the weights of a Gateway API HTTPRoute. It
// implements the controller's Engine and Traffic, so the controller and
// the strategy core know nothing of Kubernetes. Reads come from informers;
// writes go through a rate-limited work queue of keys whose handlers read
// the world and converge it (the client-go sample-controller pattern).
// It is the only package that imports client-go.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// The labels lastgood puts on everything it creates. It finds its objects
// by them after a restart and never touches an object without
// LabelManagedBy.
const (
	LabelApp       = "lastgood.dev/app"
	LabelRevision  = "lastgood.dev/revision"
	LabelHash      = "lastgood.dev/pod-template-hash"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "lastgood"
	// AnnotationCreatedFor is the revision a ReplicaSet was created for;
	// it differs from LabelRevision after an undo adopted it.
	AnnotationCreatedFor = "lastgood.dev/created-for-revision"
	// PinImage is the artifact key under which a revision keeps its image
	// digest.
	PinImage = "image"
	// ServicePort is the port of the Services lastgood makes.
	ServicePort = 80
)

// Config is what New needs.
type Config struct {
	Rest *rest.Config
	// Namespace is where apps run unless their manifest names another.
	Namespace string
	Log       *slog.Logger
	// ResolveTimeout bounds resolving an image at apply (default 20s).
	ResolveTimeout time.Duration
	// Artifact returns the bytes of a stored artifact (a config file of
	// kubernetes.config) by its digest.
	Artifact func(digest string) ([]byte, error)
}

// Engine runs revisions as ReplicaSets and routes with Services. Run
// starts its informers and workers; Scale, Replicas, Adopt, Route and the
// rest may be called from any goroutine, and wait for Run to start.
type Engine struct {
	cfg     Config
	kube    *client
	dyn     dynamic.Interface
	queue   workqueue.TypedRateLimitingInterface[key]
	changed chan struct{}
	events  chan announcement

	started chan struct{}
	runCtx  context.Context

	mu      sync.Mutex
	watches map[string]*namespaceWatch
	state   map[string]*appState
	// allowed is when RBAC last allowed lastgood everything in a namespace.
	allowed map[string]time.Time
	// onWatch, when set (GitOps), is told each namespace the engine
	// starts watching; called without e.mu.
	onWatch func(ns string)
}

// key is one unit of work: a revision's ReplicaSet, or an app's traffic
// (Revision 0).
type key struct {
	App      string
	Revision int
}

// appState is what the engine was asked to do for one app.
type appState struct {
	namespace string
	manifest  *manifest.App // of the newest revision scaled up
	desired   map[int]desired
	table     *controller.Table
	// stable is the revision the Service <app> selects, once known.
	stable int
	// closed is set by Close until a revision is scaled up again: the
	// app's Services are gone and must not come back.
	closed bool
	// adopted maps the pod-template hash of a ReplicaSet that Adopt handed
	// to another revision to that revision.
	adopted map[string]int
	// evictions are the last evictions of the app's pods (evictions.go);
	// evictedPods the pods already counted among them.
	evictions   []Eviction
	evictedPods map[types.UID]bool
	// gone are the last sights of the app's deleted pods (evidence.go).
	gone []*corev1.Pod
}

type desired struct {
	w controller.Workload
	n int
}

// namespaceWatch holds the informers of one namespace.
type namespaceWatch struct {
	pods     cache.SharedIndexInformer
	sets     cache.SharedIndexInformer
	podList  corelisters.PodLister
	setList  appslisters.ReplicaSetLister
	services cache.SharedIndexInformer
	svcList  corelisters.ServiceLister
}

// New connects to the API server; nothing runs before Run.
func New(cfg Config) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.ResolveTimeout == 0 {
		cfg.ResolveTimeout = 20 * time.Second
	}
	rc := rest.CopyConfig(cfg.Rest)
	rc.UserAgent = "lastgood"
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	kube, err := newClient(rc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Engine{
		cfg: cfg, kube: kube, dyn: dyn,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "lastgood"}),
		changed: make(chan struct{}, 1),
		events:  make(chan announcement, maxAnnouncements),
		started: make(chan struct{}),
		watches: map[string]*namespaceWatch{},
		state:   map[string]*appState{},
		allowed: map[string]time.Time{},
	}, nil
}

// Changed is signalled whenever a pod or ReplicaSet of lastgood's changes:
// the controller reconciles at once instead of at its next tick.
func (e *Engine) Changed() <-chan struct{} { return e.changed }

func (e *Engine) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// Run watches the default namespace, then converges what Scale and Route
// ask for until ctx ends; then it stops its informers and workers.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	close(e.started)
	if err := e.mayWork(ctx, e.cfg.Namespace); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if _, err := e.watch(ctx, e.cfg.Namespace); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for e.work(ctx) {
			}
		})
	}
	wg.Go(func() { e.announce(ctx) })
	<-ctx.Done()
	e.queue.ShutDown()
	wg.Wait()
	return nil
}

// ready waits until Run has started.
func (e *Engine) ready(ctx context.Context) (context.Context, error) {
	select {
	case <-e.started:
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.runCtx, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// watch starts (once) and returns the informers of namespace ns, after
// their caches have synced. They live as long as Run's context.
func (e *Engine) watch(ctx context.Context, ns string) (*namespaceWatch, error) {
	e.mu.Lock()
	w := e.watches[ns]
	e.mu.Unlock()
	if w != nil {
		return w, nil
	}
	runCtx, err := e.ready(ctx)
	if err != nil {
		return nil, err
	}
	mine := labels.Set{LabelManagedBy: managedBy}.String()
	podsLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = mine
			var l corev1.PodList
			return &l, e.kube.list(ctx, e.kube.pods(), ns, o, &l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = mine
			return e.kube.watch(ctx, e.kube.pods(), ns, o)
		},
	}
	setsLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = mine
			var l appsv1.ReplicaSetList
			return &l, e.kube.list(ctx, e.kube.replicaSets(), ns, o, &l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = mine
			return e.kube.watch(ctx, e.kube.replicaSets(), ns, o)
		},
	}
	svcLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = mine
			var l corev1.ServiceList
			return &l, e.kube.list(ctx, e.kube.services(), ns, o, &l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = mine
			return e.kube.watch(ctx, e.kube.services(), ns, o)
		},
	}
	idx := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	w = &namespaceWatch{
		pods:     cache.NewSharedIndexInformer(podsLW, &corev1.Pod{}, 0, idx),
		sets:     cache.NewSharedIndexInformer(setsLW, &appsv1.ReplicaSet{}, 0, idx),
		services: cache.NewSharedIndexInformer(svcLW, &corev1.Service{}, 0, idx),
	}
	w.podList = corelisters.NewPodLister(w.pods.GetIndexer())
	w.setList = appslisters.NewReplicaSetLister(w.sets.GetIndexer())
	w.svcList = corelisters.NewServiceLister(w.services.GetIndexer())
	onPod := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { e.podChanged(o) },
		UpdateFunc: func(_, o any) { e.podChanged(o) },
		DeleteFunc: func(o any) { e.podGone(o); e.podChanged(o) },
	}
	onSet := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { e.objectChanged(o) },
		UpdateFunc: func(_, o any) { e.objectChanged(o) },
		DeleteFunc: func(o any) { e.objectChanged(o) },
	}
	if _, err := w.pods.AddEventHandler(onPod); err != nil {
		return nil, err
	}
	if _, err := w.sets.AddEventHandler(onSet); err != nil {
		return nil, err
	}
	if _, err := w.services.AddEventHandler(onSet); err != nil {
		return nil, err
	}

	e.mu.Lock()
	if have := e.watches[ns]; have != nil {
		e.mu.Unlock()
		return have, nil // another caller started it meanwhile
	}
	e.watches[ns] = w
	onWatch := e.onWatch
	e.mu.Unlock()
	if onWatch != nil {
		onWatch(ns)
	}
	go w.pods.RunWithContext(runCtx)
	go w.sets.RunWithContext(runCtx)
	go w.services.RunWithContext(runCtx)
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), w.pods.HasSynced, w.sets.HasSynced, w.services.HasSynced) {
		return nil, fmt.Errorf("watch namespace %s: caches did not sync: %w", ns, errors.Join(syncCtx.Err(), runCtx.Err()))
	}
	return w, nil
}

// objectChanged queues the converging of the object's revision (or its
// app's traffic, for a Service) so that a change made by someone else is
// undone, and wakes the controller.
func (e *Engine) objectChanged(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return
	}
	app := m.GetLabels()[LabelApp]
	if app == "" {
		return
	}
	e.mu.Lock()
	_, known := e.state[app]
	e.mu.Unlock()
	if known {
		switch o.(type) {
		case *corev1.Service:
			e.queue.Add(key{App: app})
		default:
			if rev, err := revisionOf(m); err == nil {
				e.queue.Add(key{App: app, Revision: rev})
			}
		}
	}
	e.notify()
}

// work handles one key; false once the queue is shut down.
func (e *Engine) work(ctx context.Context) bool {
	k, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(k)
	var err error
	if k.Revision == 0 {
		err = e.syncTraffic(ctx, k.App)
	} else {
		err = e.syncRevision(ctx, k.App, k.Revision)
	}
	switch {
	case err == nil:
		e.queue.Forget(k)
	case ctx.Err() != nil:
	default:
		e.cfg.Log.Warn("kubernetes: converge", "app", k.App, "revision", k.Revision, "err", err)
		e.queue.AddRateLimited(k)
	}
	return true
}

// app returns the state of an app, creating it; e.mu is held.
func (e *Engine) appLocked(name string) *appState {
	a := e.state[name]
	if a == nil {
		a = &appState{namespace: e.cfg.Namespace, desired: map[int]desired{}}
		e.state[name] = a
	}
	return a
}

// namespaceOf is where an app runs: its manifest's namespace, else the
// engine's.
func (e *Engine) namespaceOf(m *manifest.App) string {
	if m != nil && m.Kubernetes != nil && m.Kubernetes.Namespace != "" {
		return m.Kubernetes.Namespace
	}
	return e.cfg.Namespace
}
