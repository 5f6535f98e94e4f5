package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// A digest the test pins; kwok never pulls it.
const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// startEngine runs an engine on the test's namespace until the test ends.
func startEngine(t *testing.T, c *TestCluster) *Engine {
	t.Helper()
	e, err := New(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// workload is revision rev of app web: image registry.test/web, with
// extra manifest lines.
func workload(t *testing.T, rev int, extra string) controller.Workload {
	t.Helper()
	m, err := manifest.Parse("web.yaml", []byte("name: web\nimage: registry.test/web:1\nreplicas: 2\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return controller.Workload{App: "web", Revision: rev, Manifest: m, Artifacts: map[string]string{PinImage: testDigest}}
}

func byRevision(rs []controller.Replica, rev int) []controller.Replica {
	return slices.DeleteFunc(slices.Clone(rs), func(r controller.Replica) bool { return r.Revision != rev || r.Stopping })
}

func readyOf(rs []controller.Replica) int {
	n := 0
	for _, r := range rs {
		if r.Ready {
			n++
		}
	}
	return n
}

func TestScaleRunsOneReplicaSetPerRevision(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	w := workload(t, 1, "kubernetes: {podAnnotations: {example.com/team: web}, env: {GREETING: hello}, port: 9000}\n")
	if err := e.Scale(ctx, w, 2); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, "2 ready pods of revision 1", func() bool { return readyOf(byRevision(e.Replicas("web"), 1)) == 2 })

	rs, err := c.Apps.ReplicaSets(c.Namespace).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Labels[LabelApp] != "web" || rs.Labels[LabelRevision] != "1" || rs.Labels[LabelHash] == "" || rs.Labels[LabelManagedBy] != "lastgood" {
		t.Errorf("labels of web-1 = %v", rs.Labels)
	}
	pod := rs.Spec.Template
	ct := pod.Spec.Containers[0]
	if want := "registry.test/web@" + testDigest; ct.Image != want {
		t.Errorf("image = %q, want %q", ct.Image, want)
	}
	if pod.Annotations["example.com/team"] != "web" {
		t.Errorf("pod annotations = %v", pod.Annotations)
	}
	env := map[string]string{}
	for _, v := range ct.Env {
		env[v.Name] = v.Value
	}
	if env["PORT"] != "9000" || env["LASTGOOD_REVISION"] != "1" || env["GREETING"] != "hello" {
		t.Errorf("env = %v", env)
	}
	if p := ct.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 9000 {
		t.Errorf("readiness probe = %+v, want TCP on 9000", p)
	}

	if err := e.Scale(ctx, w, 0); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, "revision 1 gone", func() bool { return len(e.Replicas("web")) == 0 })
	WaitFor(t, time.Minute, "web-1 deleted", func() bool {
		_, err := c.Apps.ReplicaSets(c.Namespace).Get(ctx, "web-1", metav1.GetOptions{})
		return err != nil
	})
}

func TestFaultsAreObservedFromPods(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	faults := []string{"never-ready", "crash-loop", "oom", "image-pull"}
	for i, f := range faults {
		w := workload(t, i+1, fmt.Sprintf("kubernetes: {podAnnotations: {lastgood.dev/test-fault: %s}}\n", f))
		if err := e.Scale(ctx, w, 1); err != nil {
			t.Fatal(err)
		}
	}
	one := func(rev int) controller.Replica {
		rs := byRevision(e.Replicas("web"), rev)
		if len(rs) != 1 {
			return controller.Replica{}
		}
		return rs[0]
	}
	WaitFor(t, time.Minute, "never-ready: a running pod that is not ready", func() bool {
		r := one(1)
		return r.State == "running" && !r.Ready && r.Addr != "" && r.Restarts == 0
	})
	WaitFor(t, time.Minute, "crash-loop: 3 restarts, exited with an error", func() bool {
		r := one(2)
		return r.Restarts >= 3 && r.LastExit == "Error (exit code 1)" && r.State == "CrashLoopBackOff" && !r.Ready
	})
	WaitFor(t, time.Minute, "oom: restarts after OOMKilled", func() bool {
		r := one(3)
		return r.Restarts >= 1 && r.LastExit == "OOMKilled (exit code 137)"
	})
	WaitFor(t, time.Minute, "image-pull: unrunnable", func() bool {
		return strings.HasPrefix(one(4).Unrunnable, "ImagePullBackOff: ")
	})
	if r := one(1); r.Unrunnable != "" || r.LastExit != "" {
		t.Errorf("never-ready pod: %+v", r)
	}
}

// endpointsOf returns the ready addresses of a Service's EndpointSlices.
func endpointsOf(t *testing.T, c *TestCluster, svc string) []string {
	t.Helper()
	d, err := discoveryclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	list, err := d.EndpointSlices(c.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				out = append(out, ep.Addresses...)
			}
		}
	}
	slices.Sort(out)
	return out
}

func addrsOf(rs []controller.Replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Addr)
	}
	slices.Sort(out)
	return out
}

func TestRouteSwitchesTheServices(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	for rev := 1; rev <= 2; rev++ {
		if err := e.Scale(ctx, workload(t, rev, ""), 2); err != nil {
			t.Fatal(err)
		}
	}
	WaitFor(t, time.Minute, "both revisions ready", func() bool {
		rs := e.Replicas("web")
		return readyOf(byRevision(rs, 1)) == 2 && readyOf(byRevision(rs, 2)) == 2
	})
	selects := func(svc string, rev int) func() bool {
		return func() bool {
			s, err := c.Core.Services(c.Namespace).Get(ctx, svc, metav1.GetOptions{})
			return err == nil && s.Spec.Selector[LabelRevision] == strconv.Itoa(rev) && s.Spec.Selector[LabelApp] == "web"
		}
	}
	// Blue-green before the switch: stable 1, the new revision previewed.
	e.Route("web", controller.Table{Routes: []controller.Route{{Revision: 1, Weight: 100}, {Revision: 2, Weight: 0}}})
	WaitFor(t, time.Minute, "web selects 1", selects("web", 1))
	WaitFor(t, time.Minute, "web-preview selects 2", selects("web-preview", 2))
	WaitFor(t, time.Minute, "web-canary selects 2", selects("web-canary", 2))
	one := addrsOf(byRevision(e.Replicas("web"), 1))
	WaitFor(t, time.Minute, "endpoints of web on revision 1", func() bool { return slices.Equal(endpointsOf(t, c, "web"), one) })

	// The switch.
	e.Route("web", controller.Table{Routes: []controller.Route{{Revision: 2, Weight: 100}, {Revision: 1, Weight: 0}}})
	WaitFor(t, time.Minute, "web selects 2", selects("web", 2))
	two := addrsOf(byRevision(e.Replicas("web"), 2))
	WaitFor(t, time.Minute, "endpoints of web on revision 2", func() bool { return slices.Equal(endpointsOf(t, c, "web"), two) })

	// A split without an HTTPRoute: every ready pod of the app.
	e.Route("web", controller.Table{Routes: []controller.Route{{Revision: 1, Weight: 90}, {Revision: 2, Weight: 10}}})
	WaitFor(t, time.Minute, "web selects the app", func() bool {
		s, err := c.Core.Services(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
		_, byRev := s.Spec.Selector[LabelRevision]
		return err == nil && !byRev && s.Spec.Selector[LabelApp] == "web"
	})
	all := append(slices.Clone(one), two...)
	slices.Sort(all)
	WaitFor(t, time.Minute, "endpoints of web on both revisions", func() bool { return slices.Equal(endpointsOf(t, c, "web"), all) })
}

func TestCanaryWeightsOnAnHTTPRoute(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "gw"}},
			"rules": []any{map[string]any{"backendRefs": []any{
				map[string]any{"name": "web", "port": int64(80), "weight": int64(1)},
				map[string]any{"name": "web-canary", "port": int64(80), "weight": int64(0)},
			}}},
		},
	}}
	if _, err := e.dyn.Resource(httpRoutes).Namespace(c.Namespace).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	extra := "kubernetes: {traffic: {httpRoute: web}}\n"
	if msg, err := e.routeProblem(ctx, c.Namespace, "web", "web"); err != nil || msg != "" {
		t.Fatalf("routeProblem = %q, %v", msg, err)
	}
	if msg, _ := e.routeProblem(ctx, c.Namespace, "web", "shop"); !strings.Contains(msg, "shop-canary") {
		t.Errorf("a route of another app: %q", msg)
	}
	if msg, _ := e.routeProblem(ctx, c.Namespace, "nope", "web"); !strings.Contains(msg, "does not exist") {
		t.Errorf("a missing route: %q", msg)
	}
	for rev := 1; rev <= 2; rev++ {
		if err := e.Scale(ctx, workload(t, rev, extra), 1); err != nil {
			t.Fatal(err)
		}
	}
	weights := func(stable, canary int64) func() bool {
		return func() bool {
			u, err := e.dyn.Resource(httpRoutes).Namespace(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false
			}
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			refs := rules[0].(map[string]any)["backendRefs"].([]any)
			w := func(i int) int64 { v, _ := refs[i].(map[string]any)["weight"].(int64); return v }
			return w(0) == stable && w(1) == canary
		}
	}
	e.Route("web", controller.Table{Routes: []controller.Route{{Revision: 1, Weight: 90}, {Revision: 2, Weight: 10}}})
	WaitFor(t, time.Minute, "weights 90/10", weights(90, 10))
	s, err := c.Core.Services(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || s.Spec.Selector[LabelRevision] != "1" {
		t.Errorf("with an HTTPRoute, web selects revision 1 only: %v %v", s.Spec.Selector, err)
	}
	e.Route("web", controller.Table{Routes: []controller.Route{{Revision: 1, Weight: 0}, {Revision: 2, Weight: 100}}})
	WaitFor(t, time.Minute, "weights 100/0 after promotion", weights(100, 0))
	WaitFor(t, time.Minute, "web selects 2", func() bool {
		s, err := c.Core.Services(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Spec.Selector[LabelRevision] == "2"
	})
}

func TestAdoptRelabelsTheWarmReplicaSet(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	if err := e.Scale(ctx, workload(t, 2, ""), 2); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, "revision 2 ready", func() bool { return readyOf(byRevision(e.Replicas("web"), 2)) == 2 })
	before := addrsOf(byRevision(e.Replicas("web"), 2))
	if err := e.Adopt("web", 2, 5); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(byRevision(e.Replicas("web"), 5)); !slices.Equal(got, before) {
		t.Errorf("right after Adopt, revision 5's pods are %v, want %v", got, before)
	}
	WaitFor(t, time.Minute, "pods labelled revision 5", func() bool {
		pods, err := c.Core.Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{LabelRevision: "5"}.String()})
		return err == nil && len(pods.Items) == 2
	})
	rs, err := c.Apps.ReplicaSets(c.Namespace).Get(ctx, "web-2", metav1.GetOptions{})
	if err != nil || rs.Labels[LabelRevision] != "5" || rs.Annotations[AnnotationCreatedFor] != "2" {
		t.Fatalf("web-2 after adopt: %v %v", rs, err)
	}
	// Scaling revision 5 scales the adopted ReplicaSet; no web-5 appears.
	if err := e.Scale(ctx, workload(t, 5, ""), 1); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, time.Minute, "web-2 scaled to 1", func() bool {
		rs, err := c.Apps.ReplicaSets(c.Namespace).Get(ctx, "web-2", metav1.GetOptions{})
		return err == nil && *rs.Spec.Replicas == 1
	})
	if _, err := c.Apps.ReplicaSets(c.Namespace).Get(ctx, "web-5", metav1.GetOptions{}); err == nil {
		t.Error("web-5 was created beside the adopted web-2")
	}
}
