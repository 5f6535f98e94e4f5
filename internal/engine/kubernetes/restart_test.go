package kubernetes_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
)

// buildLastgood builds the real lastgood binary into the test's folder.
func buildLastgood(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lastgood")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lastgood/lastgood/cmd/lastgood").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/lastgood: %v\n%s", err, out)
	}
	return bin
}

// process is a `lastgood serve --engine kubernetes` child process.
type process struct {
	cmd *exec.Cmd
	lg  *lastgood
}

// startServe starts the binary on data and waits for its API address.
func startServe(t *testing.T, bin, data string, c *kubernetes.TestCluster, dir string) *process {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(bin, "serve", "--engine", "kubernetes", "--kubeconfig", c.Kubeconfig, "--namespace", c.Namespace,
		"--data", data, "--api", "127.0.0.1:0", "--addr-file", addrFile, "--otlp", "off")
	log, err := os.Create(filepath.Join(dir, fmt.Sprintf("serve-%d.log", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	})
	var addr string
	kubernetes.WaitFor(t, time.Minute, "lastgood serve's address", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	p := &process{cmd: cmd, lg: &lastgood{t: t, base: "http://" + addr, dir: dir}}
	kubernetes.WaitFor(t, time.Minute, "lastgood ready", func() bool {
		res, err := http.Get(p.lg.base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return p
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}

// TestKill9MidRolloutOnKubernetes kills the real lastgood binary with
// SIGKILL in the middle of a blue-green and of a canary rollout, and
// inside a promotion's rollback window. Each time the restarted lastgood
// finds its objects by label and decides as the local engine does (an
// unfinished rollout rolls back with trigger restart, a promoted one
// stays promoted); an unlabelled look-alike ReplicaSet and Service
// survive everything, `lastgood delete` included.
func TestKill9MidRolloutOnKubernetes(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	bin := buildLastgood(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	registrytest.Push(t, reg+"/web:2")
	dir, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, data, c, dir)
	selects := func(svc string) string {
		t.Helper()
		return strings.TrimSpace(kubectl(t, c, "get", "svc", svc, "-o", "jsonpath={.spec.selector.lastgood\\.dev/revision}"))
	}
	replicaSets := func() string {
		t.Helper()
		return strings.Join(strings.Fields(kubectl(t, c, "get", "rs", "-l", "app.kubernetes.io/managed-by=lastgood", "-o", "jsonpath={.items[*].metadata.name}")), " ")
	}
	manifest := func(name, image, strategy string) string {
		return p.lg.manifest(name, fmt.Sprintf("name: web\nimage: %s\nreplicas: 2\nstrategy: %s\nrollback: {progressDeadline: 5m, window: 10m}\n", image, strategy))
	}

	p.lg.must(0, "apply", "-f", manifest("v1.yaml", reg+"/web:1", "{blueGreen: {}}"), "--wait")

	// Look-alikes that lastgood did not make: the app's label, not
	// lastgood's managed-by.
	kubectlApply(t, c, `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-lookalike, labels: {lastgood.dev/app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {test: lookalike}}
  template:
    metadata: {labels: {test: lookalike}}
    spec: {containers: [{name: app, image: `+reg+`/web:1}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-lookalike, labels: {lastgood.dev/app: web}}
spec:
  selector: {test: lookalike}
  ports: [{port: 80}]
`)
	lookalikes := func(when string) {
		t.Helper()
		got := kubectl(t, c, "get", "rs/web-lookalike", "svc/web-lookalike", "-o", "name")
		if !strings.Contains(got, "replicaset.apps/web-lookalike") || !strings.Contains(got, "service/web-lookalike") {
			t.Fatalf("%s: a look-alike is gone:\n%s", when, got)
		}
	}

	// 1. Blue-green waiting for promote: kill -9, restart, rolled back.
	bg := manifest("v2.yaml", reg+"/web:2", "{blueGreen: {autoPromote: false}}")
	p.lg.must(0, "apply", "-f", bg)
	kubernetes.WaitFor(t, 2*time.Minute, "the blue-green preview on revision 2, its pods ready", func() bool {
		return selects("web-preview") == "2" && strings.Contains(kubectl(t, c, "get", "rs", "web-2", "-o", "jsonpath={.status.readyReplicas}"), "2")
	})
	p.kill9(t)
	lookalikes("after kill -9")
	p = startServe(t, bin, data, c, dir)
	kubernetes.WaitFor(t, 2*time.Minute, "the blue-green rolled back after the restart", func() bool {
		s := p.lg.status("web")
		return s.Rollout != nil && s.Rollout.Phase == "rolled-back" && s.Rollout.Trigger == "restart" && s.Stable == 1
	})
	kubernetes.WaitFor(t, 2*time.Minute, "web-2 deleted, web on revision 1", func() bool {
		return replicaSets() == "web-1" && selects("web") == "1"
	})
	lookalikes("after the restart's rollback")

	// 2. A canary paused at 50%: kill -9, restart, rolled back.
	p.lg.must(0, "apply", "-f", manifest("v3.yaml", reg+"/web:2", "{canary: {steps: [{setWeight: 50}, {pause: {}}]}}"))
	kubernetes.WaitFor(t, 2*time.Minute, "the canary paused with its pods ready", func() bool {
		s := p.lg.status("web")
		return s.Rollout != nil && s.Rollout.Phase == "paused" &&
			strings.Contains(kubectl(t, c, "get", "rs", "web-3", "-o", "jsonpath={.status.readyReplicas}"), "1")
	})
	p.kill9(t)
	p = startServe(t, bin, data, c, dir)
	kubernetes.WaitFor(t, 2*time.Minute, "the canary rolled back after the restart", func() bool {
		s := p.lg.status("web")
		return s.Rollout != nil && s.Rollout.To == 3 && s.Rollout.Phase == "rolled-back" && s.Rollout.Trigger == "restart" && s.Stable == 1
	})
	kubernetes.WaitFor(t, 2*time.Minute, "web-3 deleted, web on revision 1", func() bool {
		return replicaSets() == "web-1" && selects("web") == "1" && selects("web-canary") == "1"
	})
	lookalikes("after the canary's rollback")

	// 3. Promoted, inside its rollback window: kill -9 keeps it promoted,
	// and the previous revision warm.
	p.lg.must(0, "apply", "-f", manifest("v4.yaml", reg+"/web:2", "{blueGreen: {}}"), "--wait")
	p.kill9(t)
	p = startServe(t, bin, data, c, dir)
	kubernetes.WaitFor(t, 2*time.Minute, "the promoted release kept after the restart", func() bool {
		s := p.lg.status("web")
		return s.Rollout != nil && s.Rollout.To == 4 && s.Rollout.Phase == "promoted" && s.Stable == 4
	})
	kubernetes.WaitFor(t, time.Minute, "web on revision 4 after the restart", func() bool {
		got := selects("web")
		if got != "4" {
			t.Logf("web selects %q", got)
		}
		return got == "4"
	})
	kubernetes.WaitFor(t, time.Minute, "web-1 warm beside web-4", func() bool { return replicaSets() == "web-1 web-4" })
	if code, out, _ := p.lg.run("status", "web"); code != 0 || strings.Contains(out, "rolled-back") {
		t.Errorf("status after the restart in the window (exit %d):\n%s", code, out)
	}

	// delete takes lastgood's objects and leaves the look-alikes.
	p.lg.must(0, "delete", "web")
	kubernetes.WaitFor(t, time.Minute, "lastgood's objects of web gone", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "rs,svc", "-l", "app.kubernetes.io/managed-by=lastgood", "-o", "name")) == ""
	})
	lookalikes("after lastgood delete web")
}
