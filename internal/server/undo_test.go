package server

import (
	"context"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/strategy"
)

// TestUndoToARolledBackRevisionIsRefusedAndJudgedWhenForced: a revision
// rolled back for failing every request is not a place to undo to. The
// undo is refused naming the incident; with --force it goes out, is
// judged like any promotion and is rolled back again.
func TestUndoToARolledBackRevisionIsRefusedAndJudgedWhenForced(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "refuse")
	checks := errorsCheck + "    - name: slo\n      threshold: {metric: errorRate, max: 0.2}\n"
	st, c := releaseAndWait(t, in, a, canaryAnalyze, "FAULT_ERROR_RATE: '1'", analysisOf(checks), true)
	wantRollBack(t, st, strategy.TriggerAnalysis, "failed")
	ctx := context.Background()
	_, err := in.c.Action(ctx, a.name, "undo", api.ActionRequest{ToRevision: 2})
	if err == nil || !strings.Contains(err.Error(), "revision 2 was rolled back in incident refuse-2") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("undo to the rolled-back revision 2: %v; want a refusal naming incident refuse-2 and --force", err)
	}
	res, err := in.c.Action(ctx, a.name, "undo", api.ActionRequest{ToRevision: 2, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	st = in.waitRollout(t, a.name, res.Rollout)
	c.stop()
	d := st.Rollout.Detail
	if d.Phase != strategy.RolledBack || st.Stable != 1 {
		t.Fatalf("forced undo to revision 2 ended %s (%s: %s), stable %d; want rolled back to 1", d.Phase, d.Trigger, d.Reason, st.Stable)
	}
	if rev, _ := get(t, a.listen); rev != 1 {
		t.Fatalf("served by revision %d after the forced undo was rolled back", rev)
	}
}
