package kubernetes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// The tests of this package run against a real kube-apiserver with kwok
// (scripts/kube-cluster.sh). With KUBECONFIG set, they use that cluster —
// only if its current context is lastgood-test, the one the script
// writes, since they create and delete objects. Without KUBECONFIG,
// TestMain starts a cluster of its own with the script (building the
// binaries into the cache the first time: minutes) and stops it after.
// When neither works, every test that needs the cluster fails, saying
// how to start one.

// clusterProblem, when set, is why no cluster is available.
var clusterProblem string

func TestMain(m *testing.M) {
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	if os.Getenv("KUBECONFIG") != "" {
		return m.Run()
	}
	script, err := filepath.Abs("../../../scripts/kube-cluster.sh")
	if err != nil {
		panic(err)
	}
	run, err := os.MkdirTemp("", "lastgood-kube-test-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(run)
	env := append(os.Environ(), "LASTGOOD_KUBE_RUN="+filepath.Join(run, "cluster"))
	up := exec.Command(script, "up")
	up.Env = env
	var out bytes.Buffer
	up.Stdout, up.Stderr = &out, &out
	fmt.Fprintf(os.Stderr, "KUBECONFIG is not set: starting a test cluster with %s up\n", script)
	if err := up.Run(); err != nil {
		clusterProblem = fmt.Sprintf("KUBECONFIG is not set and %s up failed (%v):\n%s", script, err, out.String())
	} else {
		os.Setenv("KUBECONFIG", filepath.Join(run, "cluster", "admin.kubeconfig"))
		// kubectl, for the tests that show what a user sees, is in the
		// script's cache: its env line puts it in PATH.
		envCmd := exec.Command(script, "env")
		envCmd.Env = env
		if out, err := envCmd.Output(); err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				if bin, ok := strings.CutPrefix(line, "export PATH="); ok {
					os.Setenv("PATH", strings.TrimSuffix(bin, ":$PATH")+string(os.PathListSeparator)+os.Getenv("PATH"))
				}
			}
		}
		defer func() {
			down := exec.Command(script, "down")
			down.Env = env
			if out, err := down.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "%s down: %v\n%s", script, err, out)
			}
		}()
	}
	return m.Run()
}

// TestCluster is a connection to the test cluster and a namespace of the
// test's own, deleted when the test ends.
type TestCluster struct {
	Kubeconfig string
	Config     Config
	Core       coreclient.CoreV1Interface
	Apps       appsclient.AppsV1Interface
	Namespace  string
}

// NewTestCluster fails the test when there is no test cluster.
func NewTestCluster(t testing.TB) *TestCluster {
	t.Helper()
	if clusterProblem != "" {
		t.Fatalf("no Kubernetes test cluster: %s\nstart one: scripts/kube-cluster.sh up && eval \"$(scripts/kube-cluster.sh env)\"", clusterProblem)
	}
	path := os.Getenv("KUBECONFIG")
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("KUBECONFIG=%s: %v\nstart a test cluster: scripts/kube-cluster.sh up && eval \"$(scripts/kube-cluster.sh env)\"", path, err)
	}
	if raw.CurrentContext != "lastgood-test" {
		t.Fatalf("KUBECONFIG=%s has context %q, not lastgood-test: these tests create and delete objects, so they run only on the cluster of scripts/kube-cluster.sh up", path, raw.CurrentContext)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	core, err := coreclient.NewForConfig(cfg.Rest)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := appsclient.NewForConfig(cfg.Rest)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "t-" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
	cfg.Namespace = ns
	return &TestCluster{Kubeconfig: path, Config: cfg, Core: core, Apps: apps, Namespace: ns}
}

// WaitFor polls ok until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
