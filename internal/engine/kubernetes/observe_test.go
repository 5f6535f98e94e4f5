package kubernetes

import (
	"regexp"
	"strings"
	"testing"
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
