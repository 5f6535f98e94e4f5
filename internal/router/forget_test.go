package router

import (
	"slices"
	"testing"
)

// TestForgetDropsOnlyUnroutedRevisions: a pruned revision's counters go;
// those of the revision the table routes to stay, and keep counting.
func TestForgetDropsOnlyUnroutedRevisions(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) { forgetOnlyUnrouted(t, serve) })
}

func forgetOnlyUnrouted(t *testing.T, serve serveFunc) {
	a := startBackend(t, "a")
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(a)}}}})
	url, c := serve(t, r), newClient(t)
	get(t, c, url)
	r.Set(Table{Routes: []Route{{Revision: 2, Weight: 1, Backends: []string{hostport(a)}}}})
	get(t, c, url)
	r.Forget(1, 2, 9)
	var revs []int
	for _, s := range r.Stats() {
		revs = append(revs, s.Revision)
	}
	if !slices.Equal(revs, []int{2}) {
		t.Fatalf("revisions after Forget(1, 2, 9): %v, want [2] (2 is routed)", revs)
	}
	get(t, c, url)
	if s := statsOf(t, r, 2); s.Requests != 2 {
		t.Errorf("revision 2 counted %d requests, want 2: its counter must not restart", s.Requests)
	}
}
