package kubernetes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
	"github.com/lastgood/lastgood/internal/prometheustest"
)

// podEvictedEvents returns the messages of the PodEvicted Events of the
// test's namespace.
func podEvictedEvents(t *testing.T, c *kubernetes.TestCluster) string {
	t.Helper()
	return kubectl(t, c, "get", "events", "--field-selector", "reason=PodEvicted",
		"-o", "jsonpath={range .items[*]}{.type} {.involvedObject.kind}/{.involvedObject.name} {.message}{\"\\n\"}{end}")
}

// TestKubeletEvictionsRollBack: pods of the new revision evicted by the
// kubelet (phase Failed, reason Evicted: node pressure) count as restarts,
// so the release is rolled back by the crash-loop rule, with the eviction
// as the reason, and each eviction is a Warning Event on its ReplicaSet.
func TestKubeletEvictionsRollBack(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	lg := serveKubernetes(t, c)
	lg.must(0, "apply", "-f", lg.manifest("v1.yaml", fmt.Sprintf(webManifest, reg+"/web:1", "2m", "")), "--wait")
	lg.must(3, "apply", "-f", lg.manifest("v2.yaml", fmt.Sprintf(webManifest, reg+"/web:1", "2m", "lastgood.dev/test-fault: evicted")), "--wait")
	s := lg.status("web")
	if s.Stable != 1 || s.Rollout.Trigger != "crashLoop" || !strings.Contains(s.Rollout.Reason, "Evicted: The node was low on resource: memory") {
		t.Errorf("after the evictions: stable %d, rollout %+v", s.Stable, s.Rollout)
	}
	kubernetes.WaitFor(t, time.Minute, "PodEvicted warnings on web-2", func() bool {
		evs := podEvictedEvents(t, c)
		return strings.Contains(evs, "Warning ReplicaSet/web-2 pod web-2-") && strings.Contains(evs, "(Evicted)") &&
			strings.Contains(evs, "counted as a restart of the revision")
	})
}

// TestEvictionAPIIsReportedNotCounted: a pod of the new revision evicted
// through the API's eviction subresource (what kubectl drain does) is
// replaced by its ReplicaSet, reported as a Normal-looking disruption —
// a Warning Event PodEvicted saying it is not counted — and the release
// goes on to be promoted.
func TestEvictionAPIIsReportedNotCounted(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	registrytest.Push(t, reg+"/web:2")
	lg := serveKubernetes(t, c)
	const canary = `name: web
image: %s
replicas: 2
strategy:
  canary: {steps: [{setWeight: 50}, {pause: {for: 15s}}]}
rollback: {progressDeadline: 2m, window: 2m}
`
	lg.must(0, "apply", "-f", lg.manifest("v1.yaml", fmt.Sprintf(canary, reg+"/web:1")), "--wait")
	lg.must(0, "apply", "-f", lg.manifest("v2.yaml", fmt.Sprintf(canary, reg+"/web:2")))
	ctx := context.Background()
	var victim string
	kubernetes.WaitFor(t, time.Minute, "a ready pod of revision 2", func() bool {
		victim = strings.TrimSpace(kubectl(t, c, "get", "pods", "-l", "lastgood.dev/revision=2",
			"-o", `jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\n"}{end}`))
		victim, _, _ = strings.Cut(victim, "\n")
		return victim != ""
	})
	err := c.Core.Pods(c.Namespace).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: victim, Namespace: c.Namespace}})
	if err != nil {
		t.Fatalf("evict %s: %v", victim, err)
	}
	kubernetes.WaitFor(t, time.Minute, "a PodEvicted event for "+victim, func() bool {
		evs := podEvictedEvents(t, c)
		return strings.Contains(evs, "pod "+victim+" of revision 2 evicted (EvictionByEvictionAPI)") &&
			strings.Contains(evs, "not counted against the revision")
	})
	kubernetes.WaitFor(t, 2*time.Minute, "revision 2 promoted", func() bool {
		s := lg.status("web")
		if s.Rollout != nil && s.Rollout.Phase == "rolled-back" {
			t.Fatalf("an API eviction rolled the release back: %+v", s.Rollout)
		}
		return s.Stable == 2 && s.Rollout != nil && s.Rollout.Phase == "promoted"
	})
}

// podMetrics serves /metrics with one series per pod of the namespace,
// labelled as a Kubernetes scrape labels them (namespace, pod), whose value
// is value(revision label of the pod): a real HTTP target for a real
// Prometheus, reading the real pods.
func podMetrics(t *testing.T, c *kubernetes.TestCluster, value func(rev string) int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pods, err := c.Core.Pods(c.Namespace).List(r.Context(), metav1.ListOptions{LabelSelector: "lastgood.dev/app=web"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "# TYPE app_errors gauge")
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			fmt.Fprintf(w, "app_errors{namespace=%q,pod=%q} %d\n", p.Namespace, p.Name, value(p.Labels["lastgood.dev/revision"]))
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPrometheusTemplatesOnKubernetes: {{.Namespace}} and {{.Pod}} reach a
// real Prometheus as the app's namespace and a regex of the new
// revision's pods only: revision 2's pods report 1 error each beside the
// stable's 100, so the check passes only if the query picks them alone;
// revision 3's one canary pod (50% of 2 replicas) reports 100, and the
// check fails on exactly 100 (102 with the stable's pods).
func TestPrometheusTemplatesOnKubernetes(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	target := podMetrics(t, c, func(rev string) int {
		if rev == "2" {
			return 1
		}
		return 100
	})
	prom := prometheustest.Start(t, "pods", target, `up{job="pods"}`)
	addr := prometheustest.Address(prom)
	lg := serveKubernetes(t, c)
	const m = `name: web
image: %s
replicas: 2
strategy:
  canary: {steps: [{setWeight: 50}, {analyze: {for: 3s}}]}
rollback: {progressDeadline: 2m, window: 2m}
analysis:
  checks:
  - name: errors
    prometheus:
      address: %s
      query: 'sum(app_errors{namespace="{{.Namespace}}",pod=~"{{.Pod}}"})'
    failIf: "result > 10"
kubernetes: {env: {V: "%d"}}
`
	v := func(n int) string {
		return lg.manifest(fmt.Sprintf("v%d.yaml", n), fmt.Sprintf(m, reg+"/web:1", addr, n))
	}
	lg.must(0, "apply", "-f", v(1), "--wait")
	lg.must(0, "apply", "-f", v(2), "--wait")
	if s := lg.status("web"); s.Stable != 2 {
		t.Fatalf("revision 2 not promoted: %+v", s)
	}
	lg.must(3, "apply", "-f", v(3), "--wait")
	s := lg.status("web")
	if s.Stable != 2 || !strings.Contains(s.Rollout.Reason, "result = 100") {
		t.Errorf("revision 3: stable %d, rollout %+v; want rolled back on result = 100", s.Stable, s.Rollout)
	}
	// The query as it reached Prometheus, in the incident's verdicts.
	var incidents []struct {
		ID string `json:"id"`
	}
	kubernetes.WaitFor(t, time.Minute, "the incident bundle", func() bool {
		if err := json.Unmarshal([]byte(lg.must(0, "incidents", "web", "-o", "json")), &incidents); err != nil {
			t.Fatalf("incidents -o json: %v", err)
		}
		return len(incidents) == 1
	})
	raw := lg.must(0, "postmortem", incidents[0].ID, "-o", "json")
	want := fmt.Sprintf(`sum(app_errors{namespace=\"%s\",pod=~\"web-3-[a-z0-9]{5}\"})`, c.Namespace)
	if !strings.Contains(raw, want) {
		t.Errorf("the incident does not show the rendered query %s:\n%s", want, raw)
	}
}

// TestIncidentKeepsKubernetesEvidence: the bundle of a Kubernetes
// rollback keeps the failed revision's pods, their containers' last
// terminations, the Events of its ReplicaSet and pods, and a log entry per
// failed container, which on kwok (no kubelet) says why it has no lines.
func TestIncidentKeepsKubernetesEvidence(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	lg := serveKubernetes(t, c)
	lg.must(0, "apply", "-f", lg.manifest("v1.yaml", fmt.Sprintf(webManifest, reg+"/web:1", "2m", "")), "--wait")
	lg.must(3, "apply", "-f", lg.manifest("v2.yaml", fmt.Sprintf(webManifest, reg+"/web:1", "2m", "lastgood.dev/test-fault: crash-loop")), "--wait")
	var incidents []struct {
		ID string `json:"id"`
	}
	kubernetes.WaitFor(t, time.Minute, "the incident bundle", func() bool {
		if err := json.Unmarshal([]byte(lg.must(0, "incidents", "web", "-o", "json")), &incidents); err != nil {
			t.Fatalf("incidents -o json: %v", err)
		}
		return len(incidents) == 1
	})
	raw := lg.must(0, "postmortem", incidents[0].ID, "-o", "json")
	var inc struct {
		Engine *struct {
			Engine   string `json:"engine"`
			Replicas []struct {
				Name       string `json:"name"`
				Phase      string `json:"phase"`
				Gone       bool   `json:"gone"`
				Containers []struct {
					Name            string `json:"name"`
					Restarts        int    `json:"restarts"`
					State           string `json:"state"`
					LastTermination *struct {
						Reason   string `json:"reason"`
						ExitCode int    `json:"exitCode"`
					} `json:"lastTermination"`
				} `json:"containers"`
			} `json:"replicas"`
			Events []struct {
				Reason string `json:"reason"`
				Object string `json:"object"`
			} `json:"events"`
		} `json:"engine"`
		Logs []struct {
			Revision int      `json:"revision"`
			File     string   `json:"file"`
			Lines    []string `json:"lines"`
			Error    string   `json:"error"`
		} `json:"logs"`
	}
	if err := json.Unmarshal([]byte(raw), &inc); err != nil {
		t.Fatalf("postmortem -o json: %v\n%s", err, raw)
	}
	if inc.Engine == nil || inc.Engine.Engine != "kubernetes" || len(inc.Engine.Replicas) == 0 {
		t.Fatalf("no kubernetes evidence in the bundle:\n%s", raw)
	}
	crashed := 0
	for _, p := range inc.Engine.Replicas {
		if !strings.HasPrefix(p.Name, "web-2-") {
			t.Errorf("replica %s is not one of revision 2's", p.Name)
		}
		for _, ct := range p.Containers {
			if lt := ct.LastTermination; ct.Name == "app" && ct.Restarts > 0 && lt != nil && lt.Reason == "Error" && lt.ExitCode == 1 &&
				strings.Contains(ct.State, "CrashLoopBackOff") {
				crashed++
			}
		}
	}
	if crashed == 0 {
		t.Errorf("no replica shows the crash loop (restarts, last termination Error exit 1):\n%s", raw)
	}
	created := false
	for _, ev := range inc.Engine.Events {
		created = created || (ev.Reason == "SuccessfulCreate" && ev.Object == "replicaset/web-2")
	}
	if !created {
		t.Errorf("the ReplicaSet's Events are missing (SuccessfulCreate on replicaset/web-2):\n%s", raw)
	}
	logs := 0
	for _, l := range inc.Logs {
		if l.Revision == 2 && strings.HasPrefix(l.File, "pod/web-2-") && strings.HasSuffix(l.File, "/app (previous run)") {
			logs++
			if l.Error == "" || len(l.Lines) != 0 {
				t.Errorf("log %s on kwok: lines %q, error %q; want no lines and why", l.File, l.Lines, l.Error)
			}
		}
	}
	if logs == 0 {
		t.Errorf("no log entry for the failed containers:\n%s", raw)
	}
	md := lg.must(0, "postmortem", incidents[0].ID)
	for _, want := range []string{"## Replicas of revision 2 (kubernetes)", "## Events of revision 2 (kubernetes)", "SuccessfulCreate", "(could not be read: "} {
		if !strings.Contains(md, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, md)
		}
	}
}

// TestNoAnalysisSaysWhichChecksApply: on Kubernetes a release without an
// analysis section gets no default checks (they read lastgood's router);
// apply and status say that only the replicas' health judges it.
func TestNoAnalysisSaysWhichChecksApply(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	registrytest.Push(t, reg+"/web:2")
	lg := serveKubernetes(t, c)
	lg.must(0, "apply", "-f", lg.manifest("v1.yaml", fmt.Sprintf(webManifest, reg+"/web:1", "2m", "")), "--wait")
	out := lg.must(0, "apply", "-f", lg.manifest("v2.yaml", fmt.Sprintf(webManifest, reg+"/web:2", "2m", "")), "--wait")
	if !strings.Contains(out, "no analysis section, and no default checks here") || !strings.Contains(out, "judged only by the replicas' health") {
		t.Errorf("apply does not say which checks apply:\n%s", out)
	}
	if st := lg.must(0, "status", "web"); !strings.Contains(st, "checks:   none (no analysis checks)") {
		t.Errorf("status does not say which checks apply:\n%s", st)
	}
}
