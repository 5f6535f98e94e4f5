package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/store"
)

// TestHistoryPrunesOldRevisionsAndTheirArtifacts applies more revisions
// than `history` keeps, each with its own artifact bytes.
func TestHistoryPrunesOldRevisionsAndTheirArtifacts(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "pruned")
	bin := filepath.Join(a.dir, "bin", "web")
	orig, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		// A different artifact each time: the sample app with bytes appended.
		os.Remove(bin)
		if err := os.WriteFile(bin, append(append([]byte{}, orig...), byte(i)), 0o755); err != nil {
			t.Fatal(err)
		}
		p := a.manifest(t, 1, blueGreen, "")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, append(b, []byte("history: 2\n")...), 0o644)
		in.applyWait(t, p)
	}
	revs, err := in.c.Revisions(context.Background(), "pruned")
	if err != nil {
		t.Fatal(err)
	}
	// history: 2 keeps the two newest, and the warm previous revision of
	// the last promotion (3) until the next apply.
	if got := numbers(revs); len(got) != 3 || got[0] != 3 || got[2] != 5 {
		t.Fatalf("kept revisions %v, want 3, 4 and 5", got)
	}
	stored, _ := filepath.Glob(filepath.Join(data, "artifacts", "sha256", "*"))
	if len(stored) != 3 {
		t.Fatalf("%d artifacts stored, want the 3 of the kept revisions: %v", len(stored), stored)
	}
	for _, r := range revs {
		d := r.Artifacts["./bin/web"]
		if _, err := os.Stat(filepath.Join(data, "artifacts", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
			t.Fatalf("artifact of kept revision %d: %v", r.Number, err)
		}
	}
	// A pruned revision is gone for undo too.
	_, err = in.c.Action(context.Background(), "pruned", "undo", api.ActionRequest{ToRevision: 1})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnprocessableEntity {
		t.Fatalf("undo to a pruned revision: %v", err)
	}
}

func numbers(revs []store.Revision) []int {
	var out []int
	for _, r := range revs {
		out = append(out, r.Number)
	}
	return out
}

func TestApplyDuringARolloutIsRefusedUnlessIdentical(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "busy")
	in.applyWait(t, a.manifest(t, 1, blueGreen, "V: one"))
	manual := "blueGreen: {autoPromote: false}"
	two := a.manifest(t, 1, manual, "V: two")
	res, err := in.c.ApplyFile(context.Background(), two)
	if err != nil {
		t.Fatal(err)
	}
	again, err := in.c.ApplyFile(context.Background(), two)
	if err != nil || again.Created || again.Rollout != res.Rollout {
		t.Fatalf("identical re-apply during the rollout: %+v %v", again, err)
	}
	_, err = in.c.ApplyFile(context.Background(), a.manifest(t, 1, manual, "V: three"))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Error(), "abort busy") {
		t.Fatalf("different apply during the rollout: %v", err)
	}
	revs, _ := in.c.Revisions(context.Background(), "busy")
	if len(revs) != 2 {
		t.Fatalf("%d revisions after a refused apply, want 2", len(revs))
	}
	if _, err := in.c.Action(context.Background(), "busy", "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if st := in.waitRollout(t, "busy", res.Rollout); st.Rollout.Phase != "aborted" || st.Stable != 1 {
		t.Fatalf("after abort: %s, stable %d", st.Rollout.Phase, st.Stable)
	}
	// Applying the aborted content again rolls the same revision out again.
	retry, err := in.c.ApplyFile(context.Background(), a.manifest(t, 1, manual, "V: two"))
	if err != nil || retry.Created || retry.Revision != 2 || retry.Rollout == res.Rollout {
		t.Fatalf("re-apply after abort: %+v %v", retry, err)
	}
}

// TestSessionAffinityKeepsAClientOnOneRevision splits traffic 50/50 and
// checks that a client with a cookie jar stays where it first landed,
// while clients without one are split.
func TestSessionAffinityKeepsAClientOnOneRevision(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "sticky")
	write := func(env string) string {
		p := a.manifest(t, 2, "canary: {steps: [{setWeight: 50}, {pause: {}}]}", env)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, append(b, []byte("sessionAffinity: {maxAge: 1h}\n")...), 0o644)
		return p
	}
	in.applyWait(t, write("V: one"))
	if _, err := in.c.ApplyFile(context.Background(), write("V: two")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the canary to pause at 50%", func() bool {
		st, _ := in.c.App(context.Background(), "sticky")
		return st.Rollout.Detail.Weight == 50
	})
	for range 5 {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		first := 0
		for i := range 20 {
			res, err := client.Get("http://" + a.listen + "/")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
			if i == 0 {
				first = rev
			} else if rev != first {
				t.Fatalf("request %d of a sticky client went to revision %d, first to %d", i, rev, first)
			}
		}
	}
	byRev := map[int]int{}
	for range 20 {
		rev, _ := get(t, a.listen)
		byRev[rev]++
	}
	if byRev[1] != 10 || byRev[2] != 10 {
		t.Fatalf("clients without cookies: %v, want 10 and 10", byRev)
	}
}
