package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
)

// installCRD applies deploy/kubernetes/crd.yaml (scripts/kube-cluster.sh
// up installs it too; applying it again changes nothing).
func installCRD(t *testing.T, c *kubernetes.TestCluster) {
	t.Helper()
	kubectl(t, c, "apply", "--server-side", "-f", "../../../deploy/kubernetes/crd.yaml")
	kubectl(t, c, "wait", "--for=condition=Established", "crd/apps.lastgood.dev", "--timeout=60s")
}

// kubectlApply applies a YAML document with kubectl.
func kubectlApply(t *testing.T, c *kubernetes.TestCluster, doc string) string {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "-n", c.Namespace, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(doc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, doc)
	}
	return string(out)
}

type appObject struct {
	Metadata struct {
		Generation int64    `json:"generation"`
		Finalizers []string `json:"finalizers"`
	} `json:"metadata"`
	Spec   map[string]any       `json:"spec"`
	Status kubernetes.AppStatus `json:"status"`
}

// getApp reads an App with kubectl; ok is false when there is none.
func getApp(t *testing.T, c *kubernetes.TestCluster, name string) (appObject, bool) {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig, "-n", c.Namespace, "get", "apps.lastgood.dev", name, "-o", "json")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "NotFound") {
			return appObject{}, false
		}
		t.Fatalf("kubectl get apps.lastgood.dev %s: %v", name, err)
	}
	var a appObject
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatal(err)
	}
	return a, true
}

const appObjectYAML = `apiVersion: lastgood.dev/v1alpha1
kind: App
metadata: {name: web}
spec:
  image: %s
  replicas: %d
  strategy: {blueGreen: {}}
  rollback: {progressDeadline: 2m, window: 2m}
`

// rollouts is how many rollouts lastgood has made of app.
func (lg *lastgood) rollouts(app string) int {
	lg.t.Helper()
	var h struct {
		Rollouts []json.RawMessage `json:"rollouts"`
	}
	if err := json.Unmarshal([]byte(lg.must(0, "history", app, "-o", "json")), &h); err != nil {
		lg.t.Fatal(err)
	}
	return len(h.Rollouts)
}

// TestGitOpsApp is the GitOps story: kubectl apply of an App releases
// it, its status and `kubectl get apps.lastgood.dev` show the rollout, a
// bad spec is refused into the status and an Event with nothing changed,
// `lastgood apply` writes the same object without a second rollout, and
// deleting the App deletes the app.
func TestGitOpsApp(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	installCRD(t, c)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	registrytest.Push(t, reg+"/web:2")
	lg := serveKubernetes(t, c)

	settled := func(what string, ok func(a appObject) bool) appObject {
		t.Helper()
		var a appObject
		kubernetes.WaitFor(t, 2*time.Minute, what, func() bool {
			var found bool
			a, found = getApp(t, c, "web")
			return found && a.Status.ObservedGeneration == a.Metadata.Generation && ok(a)
		})
		return a
	}

	// 1. An App applied with kubectl is released.
	kubectlApply(t, c, fmt.Sprintf(appObjectYAML, reg+"/web:1", 2))
	a := settled("the App released", func(a appObject) bool { return a.Status.Phase == "promoted" && a.Status.StableRevision == 1 })
	if s := lg.status("web"); s.Stable != 1 {
		t.Fatalf("lastgood status: stable %d, want 1", s.Stable)
	}
	if len(a.Metadata.Finalizers) != 1 || a.Metadata.Finalizers[0] != kubernetes.Finalizer {
		t.Errorf("finalizers %v, want [%s]", a.Metadata.Finalizers, kubernetes.Finalizer)
	}
	if a.Status.NewWeight != 100 || a.Status.StableWeight != 100 {
		t.Errorf("weights: %+v", a.Status)
	}
	got := kubectl(t, c, "get", "apps.lastgood.dev")
	for _, col := range []string{"PHASE", "STABLE", "NEW", "WEIGHT", "VERDICT", "AGE", "promoted"} {
		if !strings.Contains(got, col) {
			t.Errorf("kubectl get apps.lastgood.dev lacks %s:\n%s", col, got)
		}
	}

	// 2. A bad spec: refused into the status and a Warning Event, nothing changes.
	kubectlApply(t, c, fmt.Sprintf(appObjectYAML, reg+"/web:2", -3))
	a = settled("the bad spec refused", func(a appObject) bool { return a.Status.Phase == kubernetes.PhaseInvalid })
	want := fmt.Sprintf("App %s/web: spec.replicas: ", c.Namespace)
	if !strings.Contains(a.Status.Message, want) {
		t.Errorf("status.message %q, want it to say %q", a.Status.Message, want)
	}
	if a.Status.StableRevision != 1 {
		t.Errorf("a refused spec changed the stable revision: %+v", a.Status)
	}
	kubernetes.WaitFor(t, time.Minute, "an InvalidSpec Warning on the App", func() bool {
		evs := kubectl(t, c, "get", "events", "--field-selector", "reason=InvalidSpec,involvedObject.kind=App", "-o", "jsonpath={range .items[*]}{.type} {.message}{\"\\n\"}{end}")
		return strings.Contains(evs, "Warning") && strings.Contains(evs, "spec.replicas")
	})
	if n := lg.rollouts("web"); n != 1 {
		t.Errorf("after a refused spec lastgood has %d rollouts, want 1", n)
	}

	// 3. The spec fixed: a new release.
	kubectlApply(t, c, fmt.Sprintf(appObjectYAML, reg+"/web:2", 2))
	a = settled("revision 2 promoted", func(a appObject) bool { return a.Status.Phase == "promoted" && a.Status.StableRevision == 2 })
	if a.Status.Message == "" || a.Status.NewRevision != 2 {
		t.Errorf("status after revision 2: %+v", a.Status)
	}

	// 3b. A spec that arrives during a rollout waits for it: revision 3
	// waits for promote; a new spec meanwhile is Waiting, then applied
	// when the rollout ends.
	held := strings.Replace(fmt.Sprintf(appObjectYAML, reg+"/web:1", 2), "{blueGreen: {}}", "{blueGreen: {autoPromote: false}}", 1)
	kubectlApply(t, c, held)
	settled("revision 3 waiting for promote", func(a appObject) bool { return a.Status.NewRevision == 3 && a.Status.Phase == "paused" })
	kubectlApply(t, c, fmt.Sprintf(appObjectYAML, reg+"/web:1", 1))
	kubernetes.WaitFor(t, time.Minute, "the new spec waiting", func() bool {
		a, _ := getApp(t, c, "web")
		return a.Status.Phase == kubernetes.PhaseWaiting && strings.Contains(a.Status.Message, "rollout #3")
	})
	lg.must(0, "promote", "web")
	settled("the waiting spec applied after the promote", func(a appObject) bool {
		return a.Status.Phase == "promoted" && a.Status.StableRevision == 4
	})

	// 4. lastgood apply writes the same object, and the watcher does not
	// apply it a second time.
	v3 := lg.manifest("v3.yaml", "name: web\nimage: "+reg+"/web:2\nreplicas: 1\nstrategy: {blueGreen: {}}\nrollback: {progressDeadline: 2m, window: 2m}\n")
	lg.must(0, "apply", "-f", v3, "--wait")
	a = settled("the App written by lastgood apply", func(a appObject) bool { return a.Status.StableRevision == 5 })
	if a.Spec["image"] != reg+"/web:2" || a.Spec["replicas"] != float64(1) {
		t.Errorf("App spec after lastgood apply: %v", a.Spec)
	}
	if n := lg.rollouts("web"); n != 5 {
		t.Errorf("lastgood has %d rollouts after 5 releases, want 5 (an App applied twice?)", n)
	}
	if a.Status.Rollout != 5 {
		t.Errorf("status.rollout %d, want 5", a.Status.Rollout)
	}

	// 5. Deleting the App deletes the app (as lastgood delete --force).
	kubectl(t, c, "delete", "apps.lastgood.dev", "web", "--wait=false")
	kubernetes.WaitFor(t, 2*time.Minute, "the App gone", func() bool {
		_, found := getApp(t, c, "web")
		return !found
	})
	kubernetes.WaitFor(t, 2*time.Minute, "nothing of web left", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "rs,svc", "-l", "lastgood.dev/app=web", "-o", "name")) == ""
	})
	if code, _, _ := lg.run("status", "web"); code == 0 {
		t.Error("lastgood status web succeeds after its App was deleted")
	}

	// 6. lastgood apply brings it back with an App; lastgood delete removes both.
	lg.must(0, "apply", "-f", v3, "--wait")
	settled("the App written again", func(a appObject) bool { return a.Status.Phase == "promoted" })
	lg.must(0, "delete", "web")
	kubernetes.WaitFor(t, 2*time.Minute, "the App deleted with the app", func() bool {
		_, found := getApp(t, c, "web")
		return !found
	})
	_ = os.Remove(v3)
}
