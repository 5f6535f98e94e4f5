package incident

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/store"
)

func TestArrowIsTheRolloutsDirection(t *testing.T) {
	for _, c := range []struct {
		kind     string
		from, to int
		want     string
	}{
		{KindRolledBack, 2, 3, "2 → 3"}, // rollout 2 → 3, rolled back to 2
		{KindAborted, 1, 2, "1 → 2"},
		{KindUndone, 5, 4, "4 → 5"}, // undo took 4 out as revision 5
	} {
		if got := Arrow(c.kind, c.from, c.to); got != c.want {
			t.Errorf("Arrow(%s, %d, %d) = %q, want %q", c.kind, c.from, c.to, got, c.want)
		}
		s := Summary{Kind: c.kind, From: c.from, To: c.to}
		in := &Incident{Kind: c.kind, From: c.from, To: c.to}
		if s.Arrow() != c.want || in.Arrow() != c.want {
			t.Errorf("%s: Summary.Arrow %q, Incident.Arrow %q, want %q", c.kind, s.Arrow(), in.Arrow(), c.want)
		}
	}
}

// nextRollout ends the fixture's rollout as promoted and starts web's
// next one, 1 → 2 again, which a running recorder sees start.
func (f *fixture) nextRollout(t *testing.T) {
	t.Helper()
	f.update(t, func(tx *store.Tx) error {
		ro := f.rollout
		ro.Phase = store.PhasePromoted
		if err := tx.UpdateRollout(ro); err != nil {
			return err
		}
		var err error
		f.rollout, err = tx.CreateRollout(store.Rollout{App: "web", From: 1, To: 2, Strategy: "canary",
			Phase: store.PhaseProgressing, Started: f.base})
		return err
	})
	f.event(t, 0, "rollout.started", "rollout started: revision 1 → 2 (canary)", nil)
}

// TestUnservedRevisionHasZeroFigures checks that a release that never
// took a request (its replicas never became ready) says 0 requests, 0 ms
// to roll back and to recover, and that it took no traffic — not
// "unknown".
func TestUnservedRevisionHasZeroFigures(t *testing.T) {
	f := newFixture(t)
	f.serve(1, 500, 0)
	f.start(t, Config{Recovery: 50 * time.Millisecond})
	f.nextRollout(t)
	if f.rollout.Number != 2 || f.rollout.ID != 3 {
		t.Fatalf("fixture rollout: number %d id %d; want 2 and 3", f.rollout.Number, f.rollout.ID)
	}
	f.samples(t, 2)
	f.set(2 * time.Second)
	f.end(t, store.PhaseRolledBack, "progressDeadline", "revision 2: 0 of 1 replicas ready after 2s without progress")
	f.event(t, 2*time.Second, "rollout.rolled-back", "rolled back to revision 1: revision 2: 0 of 1 replicas ready", nil)
	loadWhen(t, f.dir, "web-2", func(*Incident) bool { return true })
	f.set(3 * time.Second) // the recovery rewrite is due
	inc := loadWhen(t, f.dir, "web-2", func(i *Incident) bool { return i.Complete })
	fig := inc.Figures
	if b := fig.BlastRadius; b == nil || *b != (BlastRadius{Revision: 2}) {
		t.Errorf("blast radius = %+v, want revision 2 with 0 requests and 0 errors", b)
	}
	if fig.TimeToRollbackMs == nil || *fig.TimeToRollbackMs != 0 {
		t.Errorf("time to roll back = %v, want 0", fig.TimeToRollbackMs)
	}
	if fig.TimeToRecoverMs == nil || *fig.TimeToRecoverMs != 0 {
		t.Errorf("time to recover = %v, want 0", fig.TimeToRecoverMs)
	}
	if fig.TimeToDetectMs != nil {
		t.Errorf("time to detect = %v, want none: no traffic reached revision 2", *fig.TimeToDetectMs)
	}
	var md, page bytes.Buffer
	if err := Markdown(&md, inc); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&page, inc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| time to detect (first traffic → decision) | none: revision 2 took no traffic |",
		"| time to roll back (decision → traffic on revision 1) | 0s |",
		"| time to recover | 0s |",
		"| blast radius | 0 requests served by revision 2, 0 failed |",
		"revision 1 → 2 (canary)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}
	for _, s := range []string{md.String(), page.String()} {
		if strings.Contains(s, "unknown") {
			t.Errorf("a report of an unserved release says unknown:\n%s", s)
		}
	}
}

// TestUnwatchedRolloutKeepsUnknownFigures checks the other side: when the
// recorder did not see the rollout start (lastgood restarted meanwhile),
// missing router counters are unknown, not 0.
func TestUnwatchedRolloutKeepsUnknownFigures(t *testing.T) {
	f := newFixture(t) // its rollout started before the recorder
	f.start(t, Config{Recovery: -1})
	f.end(t, store.PhaseRolledBack, "restart", "lastgood restarted during the rollout")
	f.event(t, time.Second, "rollout.rolled-back", "rolled back to revision 1", nil)
	inc := loadWhen(t, f.dir, "web-1", func(*Incident) bool { return true })
	if inc.Figures.BlastRadius != nil {
		t.Errorf("blast radius = %+v, want unknown", inc.Figures.BlastRadius)
	}
	var md bytes.Buffer
	Markdown(&md, inc)
	if !strings.Contains(md.String(), "| blast radius | unknown |") {
		t.Errorf("report.md:\n%s", md.String())
	}
}

// TestOldBundlesAreRenamed writes bundles as an earlier lastgood did,
// named by the global rollout id, and checks that the recorder renames
// them to the app's rollout numbers at start, in an order that never
// overwrites one, and that the old ids still find them.
func TestOldBundlesAreRenamed(t *testing.T) {
	f := newFixture(t) // web's first rollout has id 2
	first := f.rollout
	f.nextRollout(t) // web's second has id 3
	second := f.rollout
	old := func(ro store.Rollout) *Incident {
		return &Incident{Schema: 1, ID: "web-" + strconv.FormatInt(ro.ID, 10), App: "web", Rollout: ro.ID, From: 1, To: 2,
			Kind: KindRolledBack, Trigger: "analysis", Reason: "check errors failed", Decided: ms(f.base.Add(time.Duration(ro.ID) * time.Second)),
			Timeline: []Entry{}, Verdicts: []Verdict{}, Series: []Point{}, Logs: []Log{}}
	}
	for _, ro := range []store.Rollout{second, first} {
		if err := write(f.dir, old(ro)); err != nil {
			t.Fatal(err)
		}
	}
	f.start(t, Config{Recovery: -1})

	want := map[string]int64{"web-1": first.ID, "web-2": second.ID}
	for id, rollout := range want {
		inc, err := Load(f.dir, id)
		if err != nil || inc.ID != id || inc.Rollout != rollout {
			t.Fatalf("Load(%s) = %+v, %v; want rollout %d", id, inc, err, rollout)
		}
		md, err := os.ReadFile(filepath.Join(f.dir, id, ReportMarkdown))
		if err != nil || !strings.HasPrefix(string(md), "# Incident "+id+"\n") {
			t.Errorf("%s/report.md was not written again with the new id: %.40q, %v", id, md, err)
		}
	}
	if inc, err := Load(f.dir, "web-3"); err != nil || inc.ID != "web-2" || inc.Rollout != second.ID {
		t.Errorf("Load(web-3), the old id of web's second rollout = %+v, %v; want incident web-2", inc, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "web-3")); !os.IsNotExist(err) {
		t.Errorf("the old folder web-3 is still there: %v", err)
	}
	list, err := List(f.dir)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want 2 incidents", list, err)
	}
}
