package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
	in.applyWait(t, a.robust(t, 2, "blueGreen: {}", "", ""))
	c := startClients(t, a.listen, 4)
	ctx := context.Background()
	res, err := in.c.ApplyFile(ctx, a.robust(t, 2, canaryAnalyze, "FAULT_ERROR_RATE: '1'", analysisOf(checks)))
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitRollout(t, a.name, res.Rollout)
	wantRollBack(t, st, strategy.TriggerAnalysis, "failed")
	_, err = in.c.Action(ctx, a.name, "undo", api.ActionRequest{ToRevision: 2})
	if err == nil || !strings.Contains(err.Error(), "revision 2 was rolled back in incident refuse-2") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("undo to the rolled-back revision 2: %v; want a refusal naming incident refuse-2 and --force", err)
	}
	res, err = in.c.Action(ctx, a.name, "undo", api.ActionRequest{ToRevision: 2, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	// Judged like any release: rolled back before the switch or inside
	// the window after it, never left serving.
	waitFor(t, 30*time.Second, "the forced undo to be rolled back", func() bool {
		if st, err = in.c.App(ctx, a.name); err != nil {
			t.Fatal(err)
		}
		return st.Rollout.ID == res.Rollout && st.Rollout.Detail.Phase == strategy.RolledBack
	})
	c.stop()
	d := st.Rollout.Detail
	if d.Phase != strategy.RolledBack || st.Stable != 1 {
		t.Fatalf("forced undo to revision 2 ended %s (%s: %s), stable %d; want rolled back to 1", d.Phase, d.Trigger, d.Reason, st.Stable)
	}
	if rev, _ := get(t, a.listen); rev != 1 {
		t.Fatalf("served by revision %d after the forced undo was rolled back", rev)
	}
	// The force is in the audit trail.
	evs, err := in.c.Events(ctx, a.name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var forced bool
	for _, e := range evs {
		if e.Type == "rollout.started" && e.Rollout == res.Rollout {
			var d struct {
				Force    bool   `json:"force"`
				Incident string `json:"incident"`
			}
			json.Unmarshal(e.Data, &d)
			forced = strings.Contains(e.Message, "forced with --force although revision 2 was rolled back in incident refuse-2") && d.Force && d.Incident == "refuse-2"
			if !forced {
				t.Logf("%s %s", e.Message, e.Data)
			}
		}
	}
	if !forced {
		t.Fatal("the forced undo's rollout.started event does not record the force")
	}
	// --to-revision 0 is not a plain undo.
	req, err := http.NewRequest(http.MethodPost, in.c.Base+"/api/v1/apps/refuse/undo", strings.NewReader(`{"toRevision": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ClientHeader, "1")
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "want a revision number from 1, got 0") {
		t.Fatalf("undo with toRevision 0: %s %s", hr.Status, body)
	}
}
