package resources

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/engine/local"
	"github.com/lastgood/lastgood/internal/manifest"
)

// TestSampleARealReplica runs the sample app through the local engine with
// memory growing by 32 MiB a second, sees the growth, and sees the group
// gone once the replica is scaled away.
func TestSampleARealReplica(t *testing.T) {
	e, err := local.New(local.Config{DataDir: t.TempDir(), StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("engine did not stop within 60s")
		}
	})

	spec := local.Spec{
		App: "web", Revision: 1, Command: []string{sampleApp},
		Env:       map[string]string{"FAULT_MEMORY_GROWTH": "32Mi"},
		Readiness: &manifest.Probe{TCP: true, Period: manifest.Duration(100 * time.Millisecond)},
	}
	if err := e.Scale(ctx, spec, 1); err != nil {
		t.Fatal(err)
	}
	var pgid int
	waitFor(t, 30*time.Second, "a running replica", func() bool {
		if rs := e.Replicas("web"); len(rs) == 1 {
			pgid = rs[0].PID // the replica leads its own process group
		}
		return pgid != 0
	})
	first, err := Sample(pgid)
	if err != nil {
		t.Fatal(err)
	}
	if first.Processes != 1 || first.RSS <= 0 || first.FDs < 3 {
		t.Errorf("first sample %+v, want one process with memory and at least stdin, stdout, stderr", first)
	}
	var last Usage
	waitFor(t, 30*time.Second, "RSS to grow by 64 MiB", func() bool {
		if last, err = Sample(pgid); err != nil {
			t.Fatal(err)
		}
		return last.RSS-first.RSS >= 64<<20
	})

	if err := e.Scale(ctx, spec, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the group to be gone", func() bool {
		_, err := Sample(pgid)
		if err != nil && !errors.Is(err, ErrGone) {
			t.Fatal(err)
		}
		return errors.Is(err, ErrGone)
	})
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
