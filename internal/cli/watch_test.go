package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

func watchedStatus(phase strategy.Phase, weight int, ready bool) controller.AppStatus {
	st := controller.AppStatus{App: store.App{Name: "web", Listen: "127.0.0.1:8080", Stable: 1}}
	st.Rollout = &controller.RolloutStatus{
		Rollout: store.Rollout{ID: 2, App: "web", From: 1, To: 2, Strategy: "canary", Phase: string(phase)},
		Detail:  strategy.State{Kind: strategy.Canary, From: 1, To: 2, Phase: phase, Weight: weight},
		Steps:   2,
	}
	st.Traffic = []controller.Route{{Revision: 1, Weight: 100 - weight, Backends: []string{"127.0.0.1:9001"}}}
	st.Replicas = []controller.Replica{{ID: "web-1-0", Revision: 1, State: "ready", Ready: true, Addr: "127.0.0.1:9001"}}
	if ready {
		st.Traffic = append(st.Traffic, controller.Route{Revision: 2, Weight: weight, Backends: []string{"127.0.0.1:9002"}})
		st.Replicas = append(st.Replicas, controller.Replica{ID: "web-2-0", Revision: 2, State: "ready", Ready: true, Addr: "127.0.0.1:9002"})
	}
	return st
}

func fixedClock() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local) }

// TestWatchPipedPrintsLines checks the piped form: the status once, then
// only what changed, one timestamped line each, and what went away.
func TestWatchPipedPrintsLines(t *testing.T) {
	var out bytes.Buffer
	w := &watcher{out: &out, now: fixedClock}
	w.show(watchedStatus(strategy.Progressing, 0, false), false)
	first := out.String()
	if !strings.HasPrefix(first, "app:      web (listening on 127.0.0.1:8080)\n") || !strings.Contains(first, "replicas:\n") {
		t.Fatalf("first output is not the whole status:\n%s", first)
	}
	out.Reset()
	w.show(watchedStatus(strategy.Progressing, 0, false), false)
	if out.Len() != 0 {
		t.Fatalf("an unchanged status printed %q", out.String())
	}
	w.show(watchedStatus(strategy.Progressing, 50, true), false)
	want := "03:04:05 rollout: #2 revision 1 → 2 (canary), progressing, step 1 of 2, 50% on revision 2\n" +
		"03:04:05 traffic: revision 1 50% (1 ready), revision 2 50% (1 ready)\n" +
		"03:04:05 replica web-2-0: revision 2 ready on 127.0.0.1:9002\n"
	if out.String() != want {
		t.Fatalf("changes printed:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	w.show(watchedStatus(strategy.Progressing, 0, false), false)
	if !strings.Contains(out.String(), "03:04:05 replica web-2-0: gone\n") {
		t.Fatalf("a replica that went away is not said:\n%s", out.String())
	}
	if strings.Contains(out.String(), "---") || strings.Contains(out.String(), "app:") {
		t.Fatalf("a whole frame was printed again:\n%s", out.String())
	}
}

// TestWatchOnATerminalRedraws checks the terminal form: each change
// clears the screen and draws the whole status again.
func TestWatchOnATerminalRedraws(t *testing.T) {
	var out bytes.Buffer
	w := &watcher{out: &out, live: true, now: fixedClock}
	w.show(watchedStatus(strategy.Progressing, 0, false), true)
	w.show(watchedStatus(strategy.Progressing, 0, false), true)
	w.show(watchedStatus(strategy.Progressing, 50, true), false)
	frames := strings.Split(out.String(), "\x1b[H\x1b[2J")
	if len(frames) != 3 || frames[0] != "" {
		t.Fatalf("want two frames, each after a clear screen; got %d parts:\n%q", len(frames), out.String())
	}
	if !strings.Contains(frames[1], "waiting for a rollout of web to start") || strings.Contains(frames[2], "waiting") {
		t.Errorf("the waiting note is not on the first frame only:\n%q", out.String())
	}
	if !strings.HasPrefix(frames[2], "app:      web") || !strings.Contains(frames[2], "web-2-0") {
		t.Errorf("second frame is not the whole new status:\n%s", frames[2])
	}
}
