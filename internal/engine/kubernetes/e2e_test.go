package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/lastgood/lastgood/internal/cli"
	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
	"github.com/lastgood/lastgood/internal/server"
)

// lastgood is a `lastgood serve --engine kubernetes` in the test's
// process, and a way to run its client commands.
type lastgood struct {
	t    *testing.T
	base string
	dir  string
}

func serveKubernetes(t *testing.T, c *kubernetes.TestCluster) *lastgood {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			DataDir: filepath.Join(dir, "data"), API: "127.0.0.1:0",
			Engine: "kubernetes", Kubeconfig: c.Kubeconfig, Namespace: c.Namespace,
			Listening: func(a string) { addr <- a },
		})
	}()
	var lg *lastgood
	select {
	case a := <-addr:
		lg = &lastgood{t: t, base: "http://" + a, dir: dir}
	case err := <-done:
		t.Fatalf("serve --engine kubernetes: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve stopped with %v", err)
			}
		})
	})
	return lg
}

// run runs one client command and returns its exit code and output.
func (lg *lastgood) run(args ...string) (int, string, string) {
	lg.t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := cli.Main(ctx, append(args, "--server", lg.base), &cli.Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(string) string { return "" },
	})
	return code, stdout.String(), stderr.String()
}

// must runs a command and fails the test unless it exits with code.
func (lg *lastgood) must(code int, args ...string) string {
	lg.t.Helper()
	got, stdout, stderr := lg.run(args...)
	if got != code {
		lg.t.Fatalf("lastgood %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, stdout, stderr)
	}
	return stdout + stderr
}

// manifest writes a manifest file and returns its path.
func (lg *lastgood) manifest(name, text string) string {
	lg.t.Helper()
	p := filepath.Join(lg.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		lg.t.Fatal(err)
	}
	return p
}

type status struct {
	Stable  int `json:"stable"`
	Rollout *struct {
		Phase   string `json:"phase"`
		Trigger string `json:"trigger"`
		Reason  string `json:"reason"`
		To      int    `json:"to"`
	} `json:"rollout"`
}

func (lg *lastgood) status(app string) status {
	lg.t.Helper()
	var s status
	if err := json.Unmarshal([]byte(lg.must(0, "status", app, "-o", "json")), &s); err != nil {
		lg.t.Fatal(err)
	}
	return s
}

func kubectl(t *testing.T, c *kubernetes.TestCluster, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", c.Kubeconfig, "-n", c.Namespace}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

const webManifest = `name: web
image: %s
replicas: 2
strategy:
  blueGreen: {}
rollback: {progressDeadline: %s, window: 2m}
kubernetes:
  podAnnotations: {%s}
`

// TestReleasesAndRollbacksOnKubernetes is the user's story on a real
// kube-apiserver: releases, the three failure paths, a moved tag, undo,
// and what kubectl shows.
func TestReleasesAndRollbacksOnKubernetes(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	one := registrytest.Push(t, reg+"/web:1")
	two := registrytest.Push(t, reg+"/web:2")
	lg := serveKubernetes(t, c)
	apps, err := appsclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	imageOf := func(rs string) string {
		t.Helper()
		got, err := apps.ReplicaSets(c.Namespace).Get(ctx, rs, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("replicaset %s: %v", rs, err)
		}
		return got.Spec.Template.Spec.Containers[0].Image
	}
	selects := func(svc string) string {
		t.Helper()
		return strings.TrimSpace(kubectl(t, c, "get", "svc", svc, "-o", "jsonpath={.spec.selector.lastgood\\.dev/revision}"))
	}
	// The deadline is short for the never-ready release and long enough
	// for the others that the rule they test decides first.
	deadline := "2m"
	v := func(name, image, annotations string) string {
		return lg.manifest(name, fmt.Sprintf(webManifest, image, deadline, annotations))
	}

	// 1. The first release, and 2. a blue-green release: promoted.
	lg.must(0, "apply", "-f", v("v1.yaml", reg+"/web:1", ""), "--wait")
	if got := imageOf("web-1"); got != reg+"/web@"+one {
		t.Errorf("web-1 runs %s, want %s/web@%s", got, reg, one)
	}
	out := lg.must(0, "apply", "-f", v("v2.yaml", reg+"/web:2", ""), "--wait")
	if !strings.Contains(out, "promoted") {
		t.Errorf("apply v2: %s", out)
	}
	if s := lg.status("web"); s.Stable != 2 || selects("web") != "2" {
		t.Fatalf("after v2: stable %d, web selects %q", s.Stable, selects("web"))
	}

	// 3. A release that never becomes ready: rolled back by the deadline.
	deadline = "4s"
	lg.must(3, "apply", "-f", v("v3.yaml", reg+"/web:2", "lastgood.dev/test-fault: never-ready"), "--wait")
	deadline = "2m"
	if s := lg.status("web"); s.Rollout.Trigger != "progressDeadline" || s.Stable != 2 {
		t.Errorf("never-ready: %+v", s.Rollout)
	}
	// 4. A crash loop.
	lg.must(3, "apply", "-f", v("v4.yaml", reg+"/web:2", "lastgood.dev/test-fault: crash-loop"), "--wait")
	if s := lg.status("web"); s.Rollout.Trigger != "crashLoop" || !strings.Contains(s.Rollout.Reason, "Error (exit code 1)") {
		t.Errorf("crash-loop: %+v", s.Rollout)
	}
	// 5. An image that cannot be pulled: rolled back at once, with why.
	lg.must(3, "apply", "-f", v("v5.yaml", reg+"/web:2", "lastgood.dev/test-fault: image-pull"), "--wait")
	if s := lg.status("web"); s.Rollout.Trigger != "unrunnable" || !strings.Contains(s.Rollout.Reason, "ImagePullBackOff") {
		t.Errorf("image-pull: %+v", s.Rollout)
	}
	if got := selects("web"); got != "2" {
		t.Errorf("after the rollbacks web selects %q, want 2", got)
	}
	kubernetes.WaitFor(t, time.Minute, "the failed ReplicaSets deleted", func() bool {
		names := kubectl(t, c, "get", "rs", "-l", "lastgood.dev/app=web", "-o", "name")
		return !strings.Contains(names, "web-3") && !strings.Contains(names, "web-4") && !strings.Contains(names, "web-5")
	})

	// 6. The tag moved: applying the same manifest is a new revision.
	moved := registrytest.Push(t, reg+"/web:2")
	out = lg.must(0, "apply", "-f", v("v2.yaml", reg+"/web:2", ""), "--wait")
	if s := lg.status("web"); s.Stable != 6 || imageOf("web-6") != reg+"/web@"+moved {
		t.Fatalf("after the tag moved: stable %d, web-6 runs %s (want @%s)\n%s", s.Stable, imageOf("web-6"), moved, out)
	}
	// Applying it again changes nothing.
	if out := lg.must(0, "apply", "-f", v("v2.yaml", reg+"/web:2", "")); !strings.Contains(out, "nothing to do") {
		t.Errorf("re-apply: %s", out)
	}

	// 7. Undo runs the old digest again (revision 2's, still warm).
	lg.must(0, "undo", "web")
	kubernetes.WaitFor(t, time.Minute, "undo promoted", func() bool {
		s := lg.status("web")
		return s.Stable == 7 && s.Rollout.Phase == "promoted"
	})
	kubernetes.WaitFor(t, time.Minute, "web selects revision 7", func() bool { return selects("web") == "7" })
	pods := kubectl(t, c, "get", "pods", "-l", "lastgood.dev/revision=7", "-o", "jsonpath={.items[*].spec.containers[0].image}")
	if f := strings.Fields(pods); len(f) != 2 || f[0] != reg+"/web@"+two || f[1] != f[0] {
		t.Errorf("revision 7 pods run %q, want 2 × %s/web@%s", pods, reg, two)
	}

	// What kubectl shows, and lastgood's decisions as Kubernetes Events.
	got := kubectl(t, c, "get", "rs,svc", "-l", "lastgood.dev/app=web", "-o", "name")
	for _, want := range []string{"service/web\n", "service/web-canary\n", "service/web-preview\n", "replicaset.apps/web-6\n", "replicaset.apps/web-2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("kubectl get rs,svc -l lastgood.dev/app=web lacks %s:\n%s", strings.TrimSpace(want), got)
		}
	}
	kubernetes.WaitFor(t, time.Minute, "a RolloutRolledBack warning on a ReplicaSet", func() bool {
		evs := kubectl(t, c, "get", "events", "--field-selector", "reason=RolloutRolledBack", "-o", "jsonpath={range .items[*]}{.type} {.involvedObject.kind} {.message}{\"\\n\"}{end}")
		return strings.Contains(evs, "Warning ReplicaSet") && strings.Contains(evs, "ImagePullBackOff")
	})
	evs := kubectl(t, c, "get", "events", "--field-selector", "reason=RolloutPromoted", "-o", "jsonpath={.items[*].involvedObject.name}")
	if !slices.Contains(strings.Fields(evs), "web-6") {
		t.Errorf("no RolloutPromoted event on web-6: %q", evs)
	}

	// The same commands as on the local engine.
	if h := lg.must(0, "history", "web"); strings.Count(h, "\n") < 7 {
		t.Errorf("history:\n%s", h)
	}
	if inc := lg.must(0, "incidents", "web"); strings.Count(inc, "web-") < 3 {
		t.Errorf("incidents:\n%s", inc)
	}
	var incidents []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(lg.must(0, "incidents", "web", "-o", "json")), &incidents); err != nil || len(incidents) == 0 {
		t.Fatalf("incidents -o json: %v", err)
	}
	if md := lg.must(0, "postmortem", incidents[0].ID); !strings.Contains(md, "web") {
		t.Errorf("postmortem %s:\n%s", incidents[0].ID, md)
	}

	// delete stops every revision and removes the Services.
	lg.must(0, "delete", "web")
	left := ""
	kubernetes.WaitFor(t, time.Minute, "nothing of web left", func() bool {
		left = strings.TrimSpace(kubectl(t, c, "get", "rs,svc,pods", "-l", "lastgood.dev/app=web", "-o", "name"))
		if left != "" {
			t.Logf("left: %s", strings.ReplaceAll(left, "\n", " "))
		}
		return left == ""
	})
}

// TestBadInputOnKubernetes: each is refused with exit 2, naming the file,
// line and field, and nothing is created on the cluster.
func TestBadInputOnKubernetes(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	lg := serveKubernetes(t, c)
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"unparsable reference", "name: web\nimage: Web:1\n", `bad.yaml:2: image: "Web:1": not an image reference`},
		{"no tag", "name: web\nimage: " + reg + "/web\n", "lastgood does not assume :latest"},
		{"missing tag", "name: web\nimage: " + reg + "/web:9\n", "not found in its registry"},
		{"unreachable registry", "name: web\nimage: 127.0.0.1:1/web:1\n", "registry unreachable"},
		{"missing namespace", "name: web\nimage: " + reg + "/web:1\nkubernetes: {namespace: no-such-ns}\n",
			"bad.yaml:3: kubernetes.namespace: namespace no-such-ns does not exist"},
		{"missing route", "name: web\nimage: " + reg + "/web:1\nkubernetes:\n  traffic: {httpRoute: nope}\n",
			"bad.yaml:4: kubernetes.traffic.httpRoute: HTTPRoute nope does not exist"},
		{"run on kubernetes", "name: web\nlisten: 127.0.0.1:8080\nrun: {command: [/bin/true]}\n",
			"run: is for the local engine"},
		{"missing config file", "name: web\nimage: " + reg + "/web:1\nkubernetes:\n  config: {files: [nope.conf]}\n",
			"bad.yaml:4: kubernetes.config.files[0]: nope.conf: no such file"},
		{"missing secret", "name: web\nimage: " + reg + "/web:1\nkubernetes:\n  secretRefs: [{name: nope}]\n",
			"bad.yaml:4: kubernetes.secretRefs[0].name: secret nope does not exist in namespace"},
		{"missing deployment", "name: web\nkubernetes:\n  workloadRef: {kind: Deployment, name: nope}\n",
			"bad.yaml:3: kubernetes.workloadRef.name: Deployment nope does not exist in namespace"},
		{"compare check", "name: web\nimage: " + reg + "/web:1\nanalysis:\n  checks:\n  - {name: e, compare: {metric: errorRate, maxIncrease: 0.01}}\n",
			"analysis.checks[0].compare: is not available on the kubernetes engine yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := lg.run("apply", "-f", lg.manifest("bad.yaml", tc.manifest))
			if code != 2 || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("exit %d, want 2, saying %q:\n%s%s", code, tc.want, stdout, stderr)
			}
		})
	}
	if got := kubectl(t, c, "get", "rs,svc,pods,cm,secret,sts", "-l", "app.kubernetes.io/managed-by=lastgood", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("refused applies created objects:\n%s", got)
	}
	if got := kubectl(t, c, "get", "rs,svc,pods", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("refused applies created objects:\n%s", got)
	}
	if code, _, _ := lg.run("status", "web"); code == 0 {
		t.Error("a refused first apply created the app")
	}
}
