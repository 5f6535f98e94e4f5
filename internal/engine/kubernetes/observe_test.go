package kubernetes

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPodPatternMatchesTheReplicaSetsPods: the {{.Pod}} regex matches
// the names the API server generates for a ReplicaSet's pods (the base
// cut to 58 characters), anchored as PromQL's =~ anchors, and no other
// revision's.
func TestPodPatternMatchesTheReplicaSetsPods(t *testing.T) {
	long := strings.Repeat("a", 55) + "-12"
	for _, tc := range []struct {
		rs, pod string
		want    bool
	}{
		{"web-4", "web-4-x7k2p", true},
		{"web-4", "web-44-x7k2p", false},
		{"web-4", "web-4-x7k2", false},
		{"web-4", "other-web-4-x7k2p", false},
		{"web.v2-4", "webxv2-4-x7k2p", false}, // the dot is literal
		{long, long[:57] + "-abcde", false},
		{long, (long + "-")[:58] + "abcde", true},
	} {
		re := regexp.MustCompile("^(?:" + podPattern(tc.rs) + ")$")
		if got := re.MatchString(tc.pod); got != tc.want {
			t.Errorf("podPattern(%q) = %s matches %q: %v, want %v", tc.rs, podPattern(tc.rs), tc.pod, got, tc.want)
		}
	}
}

// TestContainerLogFailsSoftWithoutAKubelet: on kwok the API server has no
// kubelet to ask for a container's log; the entry says so instead of
// failing the bundle.
func TestContainerLogFailsSoftWithoutAKubelet(t *testing.T) {
	c := NewTestCluster(t)
	e := startEngine(t, c)
	ctx := context.Background()
	if err := e.Scale(ctx, workload(t, 1, ""), 1); err != nil {
		t.Fatal(err)
	}
	var pod string
	WaitFor(t, time.Minute, "a ready pod", func() bool {
		for _, r := range e.Replicas("web") {
			if r.Ready {
				pod = r.ID
			}
		}
		return pod != ""
	})
	l := e.containerLog(ctx, c.Namespace, pod, "app", 1, false, false)
	if l.File != "pod/"+pod+"/app" || len(l.Lines) != 0 || !strings.Contains(l.Error, "the API server gave no log") || !strings.Contains(l.Error, "10250") {
		t.Errorf("log of %s on kwok: %+v", pod, l)
	}
	gone := e.containerLog(ctx, c.Namespace, pod, "app", 1, true, true)
	if gone.File != "pod/"+pod+"/app (previous run)" || !strings.Contains(gone.Error, "deleted before the bundle was written") {
		t.Errorf("log of a gone pod: %+v", gone)
	}
}
