package logs

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/engine/local"
	"github.com/lastgood/lastgood/internal/manifest"
)

// TestCountsPanicsOfARealReplica runs the sample app through the local
// engine with panic lines every 100ms and a log limit small enough to
// rotate the log about once a second, and counts the panic lines.
func TestCountsPanicsOfARealReplica(t *testing.T) {
	e, err := local.New(local.Config{DataDir: t.TempDir(), LogLimit: 300, StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("engine did not stop within 60s")
		}
	}
	t.Cleanup(stop)

	spec := local.Spec{
		App: "web", Revision: 1, Command: []string{sampleApp},
		Env:       map[string]string{"FAULT_PANIC_EVERY": "100ms"},
		Readiness: &manifest.Probe{TCP: true, Period: manifest.Duration(100 * time.Millisecond)},
	}
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	var path string
	waitFor(t, 30*time.Second, "the replica to be listed", func() bool {
		rs := e.Replicas("web")
		if len(rs) == 1 {
			path = rs[0].LogPath
		}
		return path != ""
	})

	c := newCounter(t, path, FromStart())
	var got Count
	waitFor(t, 60*time.Second, "30 panic lines and 2 rotations", func() bool {
		got = poll(t, c)
		return got.Matches >= 30 && got.Rotations >= 2
	})
	if got.Lines < got.Matches {
		t.Errorf("%d lines but %d matches", got.Lines, got.Matches)
	}
	if len(got.Last) != 5 || got.Last[4] != "panic: simulated failure" {
		t.Errorf("Last = %q, want five panic lines", got.Last)
	}

	stop()
	got = poll(t, c)
	// What the two files still on disk hold is a lower bound of what was
	// counted; with a poll every 20ms and a rotation every ~second nothing
	// was missed, so more were counted than remain.
	var onDisk int64
	for _, p := range []string{path, path + ".1"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += int64(strings.Count(string(b), "panic: simulated failure\n"))
	}
	if got.Matches <= onDisk {
		t.Errorf("counted %d panic lines; the current log and its backup alone hold %d", got.Matches, onDisk)
	}
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
