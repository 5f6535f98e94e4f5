package kubernetes_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
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
