package kubernetes_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
	"github.com/lastgood/lastgood/internal/server"
)

// syncBuffer is a log that goroutines write to and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// grantRBAC applies the ServiceAccount, ClusterRoles and bindings of
// `kubectl kustomize deploy/kubernetes`, renamed with suffix (the
// ClusterRoles are cluster-wide; each test has its own) and bound in the
// test's namespace, without the rules drop matches. It returns a
// kubeconfig that impersonates that ServiceAccount.
func grantRBAC(t *testing.T, c *kubernetes.TestCluster, suffix string, drop func(rule map[string]any) bool) string {
	t.Helper()
	built := kubectl(t, c, "kustomize", "../../../deploy/kubernetes")
	var out []string
	sa := ""
	for _, doc := range strings.Split(built, "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("kubectl kustomize deploy/kubernetes: %v\n%s", err, doc)
		}
		kind, _ := o["kind"].(string)
		meta, _ := o["metadata"].(map[string]any)
		switch kind {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding":
		default:
			continue
		}
		meta["name"] = fmt.Sprint(meta["name"], "-", suffix)
		if kind == "ServiceAccount" {
			sa = meta["name"].(string)
		}
		if kind == "ServiceAccount" || kind == "RoleBinding" {
			meta["namespace"] = c.Namespace
		}
		if ref, ok := o["roleRef"].(map[string]any); ok {
			ref["name"] = fmt.Sprint(ref["name"], "-", suffix)
		}
		if subs, ok := o["subjects"].([]any); ok {
			for _, s := range subs {
				s := s.(map[string]any)
				s["name"], s["namespace"] = fmt.Sprint(s["name"], "-", suffix), c.Namespace
			}
		}
		if rules, ok := o["rules"].([]any); ok && drop != nil {
			var kept []any
			for _, r := range rules {
				if !drop(r.(map[string]any)) {
					kept = append(kept, r)
				}
			}
			o["rules"] = kept
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
		if kind == "ClusterRole" || kind == "ClusterRoleBinding" {
			name, k := meta["name"].(string), strings.ToLower(kind)
			t.Cleanup(func() {
				exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "delete", k, name, "--ignore-not-found").Run()
			})
		}
	}
	if sa == "" {
		t.Fatal("deploy/kubernetes has no ServiceAccount")
	}
	kubectlApply(t, c, strings.Join(out, "---\n"))

	raw, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	user := raw.Contexts[raw.CurrentContext].AuthInfo
	raw.AuthInfos[user].Impersonate = "system:serviceaccount:" + c.Namespace + ":" + sa
	path := filepath.Join(t.TempDir(), "as-"+sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*raw, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveAs runs `lastgood serve --engine kubernetes` with kubeconfig,
// logging into log. It returns the server (nil when serve stopped before
// it listened) and a function that waits for serve to stop by itself and
// returns its error.
func serveAs(t *testing.T, c *kubernetes.TestCluster, kubeconfig string, log *syncBuffer) (*lastgood, func(time.Duration) error) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = server.Run(ctx, server.Config{
			DataDir: filepath.Join(dir, "data"), API: "127.0.0.1:0",
			Engine: "kubernetes", Kubeconfig: kubeconfig, Namespace: c.Namespace,
			Log:       slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Listening: func(a string) { addr <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait := func(d time.Duration) error {
		select {
		case <-done:
			return runErr
		case <-time.After(d):
			t.Fatalf("serve did not stop in %s", d)
			return nil
		}
	}
	select {
	case a := <-addr:
		return &lastgood{t: t, base: "http://" + a, dir: dir}, wait
	case <-done:
		return nil, wait
	}
}

// TestLeastPrivilegeRBAC runs lastgood as the ServiceAccount of
// deploy/kubernetes (a kubeconfig that impersonates it): releases,
// GitOps, a rollback and an undo, nothing forbidden. Without one rule,
// serve refuses to start naming the verb and resource, and an app in a
// namespace where lastgood has no RoleBinding is refused at apply.
func TestLeastPrivilegeRBAC(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	installCRD(t, c)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	registrytest.Push(t, reg+"/web:2")

	as := grantRBAC(t, c, c.Namespace, nil)
	log := &syncBuffer{}
	lg, wait := serveAs(t, c, as, log)
	if lg == nil {
		t.Fatalf("serve as the ServiceAccount: %v\n%s", wait(0), log)
	}
	kubectlApply(t, c, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: web, port: 80, weight: 1}, {name: web-canary, port: 80, weight: 0}]
`)
	m := func(name, image, strategy, annotations, deadline string) string {
		return lg.manifest(name, fmt.Sprintf("name: web\nimage: %s\nreplicas: 2\nstrategy: %s\nrollback: {progressDeadline: %s, window: 2m}\nkubernetes:\n  traffic: {httpRoute: web}\n  podAnnotations: {%s}\n",
			image, strategy, deadline, annotations))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lastgood's log:\n%s", log)
			_, out, _ := lg.run("status", "web")
			t.Logf("lastgood status web:\n%s", out)
			t.Logf("App web: %s", kubectl(t, c, "get", "apps.lastgood.dev", "-o", "yaml"))
		}
	})
	canary := "{canary: {steps: [{setWeight: 50}, {pause: {for: 1s}}]}}"
	lg.must(0, "apply", "-f", m("v1.yaml", reg+"/web:1", "{blueGreen: {}}", "", "2m"), "--wait")
	lg.must(0, "apply", "-f", m("v2.yaml", reg+"/web:2", canary, "", "2m"), "--wait")
	lg.must(3, "apply", "-f", m("v3.yaml", reg+"/web:1", "{blueGreen: {}}", "lastgood.dev/test-fault: never-ready", "4s"), "--wait")
	lg.must(0, "undo", "web")
	kubernetes.WaitFor(t, time.Minute, "the undo promoted", func() bool {
		s := lg.status("web")
		return s.Rollout != nil && s.Rollout.Phase == "promoted" && s.Stable == 4
	})
	// GitOps as the ServiceAccount: the App that lastgood apply wrote,
	// replaced with kubectl (kubectl apply would merge into it).
	cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "-n", c.Namespace, "replace", "-f", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(appObjectYAML, reg+"/web:1", 2))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl replace: %v\n%s", err, out)
	}
	kubernetes.WaitFor(t, 2*time.Minute, "the App released", func() bool {
		a, ok := getApp(t, c, "web")
		return ok && a.Status.ObservedGeneration == a.Metadata.Generation && a.Status.Phase == "promoted" && a.Status.StableRevision == 5
	})
	lg.must(0, "delete", "web")
	kubernetes.WaitFor(t, time.Minute, "nothing of web left", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "rs,svc,apps.lastgood.dev", "-l", "lastgood.dev/app=web", "-o", "name")) == ""
	})
	if l := log.String(); strings.Contains(strings.ToLower(l), "forbidden") {
		t.Errorf("lastgood was forbidden something as the ServiceAccount of deploy/kubernetes:\n%s", l)
	}

	// An app in a namespace where the ServiceAccount has no RoleBinding:
	// refused at apply, naming what is missing.
	other := "o-" + c.Namespace
	kubectl(t, c, "create", "namespace", other)
	t.Cleanup(func() {
		exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "delete", "namespace", other, "--wait=false").Run()
	})
	bad := lg.manifest("other.yaml", "name: shop\nimage: "+reg+"/web:1\nkubernetes: {namespace: "+other+"}\n")
	out := lg.must(2, "apply", "-f", bad)
	for _, want := range []string{"other.yaml:3: kubernetes.namespace: RBAC forbids lastgood in namespace " + other, "create replicasets.apps", "patch apps/status.lastgood.dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply into %s says:\n%s\nwant %q", other, out, want)
		}
	}

	// Without the rule for Services, serve does not start, and says why.
	noServices := grantRBAC(t, c, c.Namespace+"-nosvc", func(r map[string]any) bool {
		res, _ := r["resources"].([]any)
		return len(res) == 1 && res[0] == "services"
	})
	log2 := &syncBuffer{}
	_, wait2 := serveAs(t, c, noServices, log2)
	err := wait2(2 * time.Minute)
	want := "RBAC forbids lastgood in namespace " + c.Namespace + ": list services, watch services, create services, update services, delete services"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve without the Services rule: %v\nwant it to say %q", err, want)
	}
}
