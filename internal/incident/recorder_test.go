package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

const manifestYAML = `name: web
listen: 127.0.0.1:8080
replicas: %d
run:
  command: ["./web"]
  env: {GREETING: %s, API_TOKEN: %s, DB_PASSWORD: hunter2-db}
strategy:
  canary:
    steps:
      - setWeight: 10
      - analyze: {for: 30s}
analysis:
  checks:
    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}
`

// secrets are values that must never reach a bundle.
var secrets = []string{
	"s3cr3t-one-value", "s3cr3t-two-value", "hunter2-db",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
	"AKIAIOSFODNN7EXAMPLE", "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi", "pa55w0rd-in-log", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbA",
}

// fixture is a store with app web, revisions 1 and 2, and a canary rollout
// 1 → 2 that has started: web's first rollout (number 1), made after a
// rollout of another app, so its global id is 2.
type fixture struct {
	st      *store.Store
	dir     string
	logs    string
	base    time.Time
	rollout store.Rollout

	clock atomic.Int64 // ns after base
	mu    sync.Mutex
	stats map[int]router.RevisionStats
	calls atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tmp := t.TempDir()
	st, err := store.Open(filepath.Join(tmp, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, dir: filepath.Join(tmp, "incidents"), logs: filepath.Join(tmp, "logs"),
		base: time.Now().UTC().Truncate(time.Millisecond), stats: map[int]router.RevisionStats{}}
	f.update(t, func(tx *store.Tx) error {
		if err := tx.PutApp(store.App{Name: "api", Listen: "127.0.0.1:8081"}); err != nil {
			return err
		}
		if _, err := tx.CreateRevision(store.Revision{App: "api", Digest: "sha256:" + strings.Repeat("a", 64),
			Manifest: []byte(`{}`), Origin: store.OriginApply}); err != nil {
			return err
		}
		if _, err := tx.CreateRollout(store.Rollout{App: "api", To: 1, Strategy: "initial", Phase: store.PhasePromoted}); err != nil {
			return err
		}
		if err := tx.PutApp(store.App{Name: "web", Listen: "127.0.0.1:8080"}); err != nil {
			return err
		}
		for i, m := range []string{
			fmt.Sprintf(manifestYAML, 2, "hello", "s3cr3t-one-value"),
			fmt.Sprintf(manifestYAML, 3, "hi", "s3cr3t-two-value"),
		} {
			app, err := manifest.Parse("app.yaml", []byte(m))
			if err != nil {
				return err
			}
			if _, err := tx.CreateRevision(store.Revision{App: "web", Digest: fmt.Sprintf("sha256:%064x", i+1),
				Manifest: app.Canonical(), Source: m, Origin: store.OriginApply,
				Artifacts: map[string]string{"./web": fmt.Sprintf("sha256:%064x", 100+i)}}); err != nil {
				return err
			}
		}
		if err := tx.PutApp(store.App{Name: "web", Listen: "127.0.0.1:8080", Stable: 1}); err != nil {
			return err
		}
		var err error
		f.rollout, err = tx.CreateRollout(store.Rollout{App: "web", From: 1, To: 2, Strategy: "canary",
			Phase: store.PhaseProgressing, Started: f.base})
		return err
	})
	f.event(t, 0, "rollout.started", "rollout #1 started: revision 1 → 2 (canary)", nil)
	return f
}

func (f *fixture) update(t *testing.T, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// event appends an event of the rollout at base+at.
func (f *fixture) event(t *testing.T, at time.Duration, typ, msg string, data any) {
	t.Helper()
	e := store.Event{Time: f.base.Add(at), App: "web", Rollout: f.rollout.ID, Revision: 2, Type: typ, Message: msg}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		e.Data = b
	}
	f.update(t, func(tx *store.Tx) error { _, err := tx.AppendEvent(e); return err })
}

// end marks the rollout ended in the store, as the controller does.
func (f *fixture) end(t *testing.T, phase, trigger, reason string) {
	t.Helper()
	f.update(t, func(tx *store.Tx) error {
		ro := f.rollout
		ro.Phase, ro.Trigger, ro.Reason = phase, trigger, reason
		return tx.UpdateRollout(ro)
	})
}

func (f *fixture) set(at time.Duration) { f.clock.Store(int64(at)) }
func (f *fixture) now() time.Time       { return f.base.Add(time.Duration(f.clock.Load())) }

func (f *fixture) serve(rev int, requests, errs uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := router.Histogram{Bounds: router.BucketBounds(), Counts: make([]uint64, len(router.BucketBounds()))}
	h.Counts[router.BucketOf(20*time.Millisecond)] = requests
	f.stats[rev] = router.RevisionStats{Revision: rev, Requests: requests, Errors: errs, Latency: h}
}

func (f *fixture) statsOf(app string) []router.RevisionStats {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []router.RevisionStats
	for _, rev := range []int{1, 2} {
		if s, ok := f.stats[rev]; ok && app == "web" {
			out = append(out, s)
		}
	}
	return out
}

// samples waits until the recorder has read the counters n more times.
func (f *fixture) samples(t *testing.T, n int64) {
	t.Helper()
	want := f.calls.Load() + n
	waitFor(t, "router samples", func() bool { return f.calls.Load() >= want })
}

func (f *fixture) logFiles(t *testing.T, lines []string) []string {
	t.Helper()
	dir := filepath.Join(f.logs, "web", "2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "web-2-0.log")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{p}
}

// start runs a Recorder until the test ends and waits until it samples.
func (f *fixture) start(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Store, cfg.Now, cfg.Interval = f.st, f.now, 5*time.Millisecond
	if cfg.Dir == "" {
		cfg.Dir = f.dir
	}
	if cfg.Stats == nil {
		cfg.Stats = f.statsOf
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cfg).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	f.samples(t, 1) // subscribed and seeded
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func loadWhen(t *testing.T, dir, id string, ok func(*Incident) bool) *Incident {
	t.Helper()
	var inc *Incident
	waitFor(t, "incident "+id, func() bool {
		var err error
		inc, err = Load(dir, id)
		return err == nil && ok(inc)
	})
	return inc
}

func result(check, verdict, reason string, at time.Time) map[string]any {
	return map[string]any{"check": check, "verdict": verdict, "reason": reason, "at": at, "data": true, "rollout": 1,
		"evidence": map[string]any{"canarySamples": 100, "canary": 0.2, "stable": 0.005}}
}

func TestRollbackBundle(t *testing.T) {
	f := newFixture(t)
	var logLines []string
	for i := range 150 {
		logLines = append(logLines, fmt.Sprintf("request %d ok", i))
	}
	logLines = append(logLines,
		"Authorization: Bearer "+secrets[3],
		"aws key "+secrets[4]+" loaded",
		"-----BEGIN RSA PRIVATE KEY-----",
		secrets[5],
		"login password="+secrets[6],
		"session "+secrets[7],
		"panic: boom")
	logs := f.logFiles(t, logLines)
	f.serve(1, 1000, 5)
	f.start(t, Config{Logs: func(app string, rev int) []string {
		if app == "web" && rev == 2 {
			return logs
		}
		return nil
	}, Recovery: time.Second})

	f.set(time.Second)
	f.event(t, time.Second, "traffic.weight", "step 1: 10% of traffic on revision 2", nil)
	f.serve(2, 50, 10)
	f.samples(t, 2)
	f.set(2 * time.Second)
	f.event(t, 2*time.Second, "analysis.verdict", "check errors: inconclusive", result("errors", "inconclusive", "too few requests", f.base.Add(2*time.Second)))
	f.serve(2, 100, 20)
	f.samples(t, 2)
	look := f.base.Add(3900 * time.Millisecond)
	reason := "check errors failed: error rate 20% (token " + secrets[3] + ")"
	f.set(4 * time.Second)
	f.event(t, 4*time.Second, "analysis.verdict", "check errors: fail: "+reason, result("errors", "fail", reason, look))
	f.set(4200 * time.Millisecond)
	f.end(t, store.PhaseRolledBack, "analysis", reason)
	f.event(t, 4200*time.Millisecond, "rollout.rolled-back", "rolled back to revision 1: "+reason,
		map[string]any{"Name": "errors", "Verdict": "fail", "Data": true, "Reason": reason, "At": look})

	id := ID("web", f.rollout.Number)
	inc := loadWhen(t, f.dir, id, func(*Incident) bool { return true })
	if inc.Complete {
		t.Error("first write already complete; want the recovery rewrite later")
	}
	if inc.App != "web" || inc.From != 1 || inc.To != 2 || inc.Kind != KindRolledBack || inc.Trigger != "analysis" || inc.Manual {
		t.Errorf("header = %+v", inc.Summary())
	}
	var types []string
	for i, e := range inc.Timeline {
		types = append(types, e.Type)
		if i > 0 && e.Seq <= inc.Timeline[i-1].Seq {
			t.Errorf("timeline out of order at %d", i)
		}
	}
	if got, want := strings.Join(types, ","), "rollout.started,traffic.weight,analysis.verdict,analysis.verdict,rollout.rolled-back"; got != want {
		t.Errorf("timeline = %s, want %s", got, want)
	}
	if inc.Timeline[4].OffsetMs != 4200 {
		t.Errorf("rollback offset = %d ms, want 4200", inc.Timeline[4].OffsetMs)
	}
	if len(inc.Verdicts) != 2 || inc.Verdicts[0].Deciding || !inc.Verdicts[1].Deciding || inc.Verdicts[1].Verdict != "fail" {
		t.Errorf("verdicts = %+v, want the second (fail) deciding", inc.Verdicts)
	}
	fig := inc.Figures
	if fig.TimeToDetectMs == nil || *fig.TimeToDetectMs != 2900 {
		t.Errorf("time to detect = %v, want 2900 ms", fig.TimeToDetectMs)
	}
	if fig.TimeToRollbackMs == nil || *fig.TimeToRollbackMs != 300 {
		t.Errorf("time to roll back = %v, want 300 ms", fig.TimeToRollbackMs)
	}
	if b := fig.BlastRadius; b == nil || *b != (BlastRadius{Revision: 2, Requests: 100, Errors: 20}) {
		t.Errorf("blast radius = %+v, want revision 2: 100 requests, 20 errors", b)
	}
	var canaryRequests, canaryErrors uint64
	for _, p := range inc.Series {
		if p.At.Before(f.base) || p.At.After(inc.Decided.Time) || p.Recovery {
			t.Errorf("point %+v outside the rollout", p)
		}
		if p.Revision == 2 {
			canaryRequests += p.Requests
			canaryErrors += p.Errors
			if p.Requests > 0 && (p.P50Ms < 10 || p.P99Ms > 40) {
				t.Errorf("point latency p50 %v p99 %v ms, want about 20", p.P50Ms, p.P99Ms)
			}
		}
	}
	if canaryRequests != 100 || canaryErrors != 20 {
		t.Errorf("series sums revision 2 to %d requests, %d errors; want 100, 20", canaryRequests, canaryErrors)
	}
	if len(inc.Logs) != 1 || len(inc.Logs[0].Lines) != 100 || !inc.Logs[0].Truncated ||
		inc.Logs[0].Lines[99] != "panic: boom" || inc.Logs[0].Lines[0] != "request 57 ok" {
		t.Errorf("logs = %+v", inc.Logs)
	}
	diff := map[string]manifest.Change{}
	for _, c := range inc.Diff {
		diff[c.Field] = c
	}
	if c := diff["replicas"]; c.Old != "2" || c.New != "3" {
		t.Errorf("diff replicas = %+v", c)
	}
	if c := diff["run.env.GREETING"]; c.Old != "hello" || c.New != "hi" {
		t.Errorf("diff greeting = %+v", c)
	}
	if c := diff["run.env.API_TOKEN"]; c.Old != redact.Marker || c.New != redact.Changed {
		t.Errorf("diff API_TOKEN = %+v, want it redacted and marked changed", c)
	}
	if _, ok := diff["run.env.DB_PASSWORD"]; ok {
		t.Error("unchanged DB_PASSWORD in the diff")
	}
	if inc.Artifacts.To == nil || inc.Artifacts.To.Artifacts["./web"] != fmt.Sprintf("sha256:%064x", 101) {
		t.Errorf("artifacts = %+v", inc.Artifacts)
	}
	assertNoSecrets(t, filepath.Join(f.dir, id, FileName))

	// a second later the bundle is written again with the recovery
	f.set(5 * time.Second)
	f.samples(t, 2)
	f.set(5300 * time.Millisecond)
	inc = loadWhen(t, f.dir, id, func(i *Incident) bool { return i.Complete })
	if r := inc.Figures.TimeToRecoverMs; r == nil || *r != 800 {
		t.Errorf("time to recover = %v, want 800 ms (the first sample with no canary traffic)", r)
	}
	recovery := 0
	for _, p := range inc.Series {
		if p.Recovery {
			recovery++
		}
	}
	if recovery == 0 {
		t.Error("no recovery points after the rewrite")
	}
	if len(inc.Logs) != 1 || len(inc.Logs[0].Lines) != 100 {
		t.Error("the rewrite lost the logs")
	}
	assertNoSecrets(t, filepath.Join(f.dir, id, FileName))

	list, err := List(f.dir)
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].TimeToDetectMs == nil {
		t.Errorf("List = %+v, %v", list, err)
	}
	if _, err := Load(f.dir, "web-99"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := Load(f.dir, "../incidents"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(path) = %v, want ErrNotFound", err)
	}
}

func assertNoSecrets(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("%s contains the secret %q", path, s)
		}
	}
	if !strings.Contains(string(b), redact.Marker) {
		t.Errorf("%s redacts nothing", path)
	}
}

func TestAbortIsManual(t *testing.T) {
	f := newFixture(t)
	f.start(t, Config{Recovery: -1})
	f.event(t, time.Second, "traffic.weight", "step 1: 10% of traffic on revision 2", nil)
	f.end(t, store.PhaseAborted, "abort", "aborted by `lastgood abort`")
	f.event(t, 3*time.Second, "rollout.aborted", "aborted: all traffic back on revision 1", nil)
	inc := loadWhen(t, f.dir, ID("web", f.rollout.Number), func(*Incident) bool { return true })
	if !inc.Manual || inc.Kind != KindAborted || !inc.Complete {
		t.Errorf("abort incident: manual %v kind %s complete %v", inc.Manual, inc.Kind, inc.Complete)
	}
	if d := inc.Figures.TimeToDetectMs; d == nil || *d != 2000 {
		t.Errorf("time to detect = %v, want 2000 ms (first traffic to the abort)", d)
	}
	if inc.Figures.DecidingLook != nil {
		t.Error("an abort has no deciding look")
	}
	if b := inc.Figures.TimeToRollbackMs; b == nil || *b != 0 {
		t.Errorf("time to roll back = %v, want 0 ms: the abort is the decision and the switch", b)
	}
}

func TestUnwritableDirBecomesAnEvent(t *testing.T) {
	f := newFixture(t)
	file := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.start(t, Config{Dir: filepath.Join(file, "incidents")})
	f.end(t, store.PhaseRolledBack, "crashLoop", "revision 2's replicas restarted 3 times")
	f.event(t, time.Second, "rollout.rolled-back", "rolled back to revision 1", nil)
	var failed store.Event
	waitFor(t, "incident.failed event", func() bool {
		evs, err := f.st.Events(context.Background(), store.EventQuery{App: "web"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == TypeFailed {
				failed = e
				return true
			}
		}
		return false
	})
	if failed.Rollout != f.rollout.ID || !strings.Contains(failed.Message, ID("web", f.rollout.Number)) {
		t.Errorf("failed event = %+v", failed)
	}
	f.samples(t, 2) // still running
}

func TestCatchUpAfterFallingBehind(t *testing.T) {
	f := newFixture(t)
	f.start(t, Config{Recovery: -1})
	f.event(t, time.Second, "traffic.weight", "step 1: 10% of traffic on revision 2", nil)
	// more events in one commit than a subscriber buffers: the
	// subscription closes and the recorder must read them back
	f.end(t, store.PhaseRolledBack, "readiness", "no replica of revision 2 is ready")
	f.update(t, func(tx *store.Tx) error {
		for i := range 1100 {
			if _, err := tx.AppendEvent(store.Event{App: "web", Type: "replica.unready", Message: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		_, err := tx.AppendEvent(store.Event{Time: f.base.Add(2 * time.Second), App: "web", Rollout: f.rollout.ID, Revision: 2,
			Type: "rollout.rolled-back", Message: "rolled back to revision 1: no replica of revision 2 is ready"})
		return err
	})
	inc := loadWhen(t, f.dir, ID("web", f.rollout.Number), func(*Incident) bool { return true })
	if inc.Trigger != "readiness" || len(inc.Timeline) != 3 {
		t.Errorf("caught-up incident: trigger %s, %d timeline entries", inc.Trigger, len(inc.Timeline))
	}
}

func TestStartWritesMissedBundles(t *testing.T) {
	f := newFixture(t)
	f.end(t, store.PhaseRolledBack, "restart", "lastgood restarted during the rollout")
	f.event(t, time.Second, "rollout.rolled-back", "rolled back to revision 1", nil)
	f.start(t, Config{Recovery: -1})
	inc := loadWhen(t, f.dir, ID("web", f.rollout.Number), func(*Incident) bool { return true })
	if inc.Trigger != "restart" || inc.Kind != KindRolledBack {
		t.Errorf("missed incident = %+v", inc.Summary())
	}
}

// The target of a rollback that was itself unhealthy is in the bundle, as
// found during the rollout and after the decision.
func TestUnhealthyTargetIsRecorded(t *testing.T) {
	f := newFixture(t)
	f.start(t, Config{Recovery: time.Second})
	f.event(t, time.Second, "traffic.weight", "step 1: 10% of traffic on revision 2", nil)
	f.event(t, 2*time.Second, "rollout.target-unhealthy", "both revisions degraded together: likely an environment or dependency failure, not this release: revision 2's error rate 50%", nil)
	f.end(t, store.PhaseAborted, "abort", "aborted by `lastgood abort`")
	f.set(3 * time.Second)
	f.event(t, 3*time.Second, "rollout.aborted", "aborted: all traffic back on revision 1", nil)
	loadWhen(t, f.dir, ID("web", f.rollout.Number), func(in *Incident) bool { return len(in.Target) == 1 })
	f.event(t, 3500*time.Millisecond, "rollout.target-unhealthy", "revision 1, back in service, is unhealthy: no replica of revision 1 is ready", nil)
	f.set(5 * time.Second) // the recovery rewrite is due
	inc := loadWhen(t, f.dir, ID("web", f.rollout.Number), func(in *Incident) bool { return in.Complete })
	if len(inc.Target) != 2 || !strings.HasPrefix(inc.Target[0], "both revisions degraded together") || !strings.Contains(inc.Target[1], "back in service") {
		t.Fatalf("target findings %q", inc.Target)
	}
	var md strings.Builder
	if err := Markdown(&md, inc); err != nil || !strings.Contains(md.String(), "**Target unhealthy**: both revisions degraded together") {
		t.Fatalf("markdown (%v):\n%s", err, md.String())
	}
}

// An undo rolled back inside its window ends twice: the bundle of the
// rollback replaces the one of the promotion, and the promotion's
// recovery rewrite does not bring that back.
func TestUndoRolledBackInItsWindowKeepsTheRollback(t *testing.T) {
	f := newFixture(t)
	f.end(t, store.PhaseAborted, "abort", "aborted") // the fixture's canary rollout, before the recorder runs
	f.update(t, func(tx *store.Tx) error {
		var err error
		f.rollout, err = tx.CreateRollout(store.Rollout{App: "web", From: 1, To: 2, Strategy: "undo",
			Phase: store.PhaseProgressing, Started: f.base})
		return err
	})
	f.event(t, 0, "rollout.started", "rollout #2 started: revision 1 → 2 (undo)", nil)
	f.start(t, Config{Recovery: time.Second})
	f.set(time.Second)
	f.update(t, func(tx *store.Tx) error {
		f.rollout.Phase = store.PhasePromoted
		return tx.UpdateRollout(f.rollout)
	})
	f.event(t, time.Second, "rollout.promoted", "revision 2 promoted", nil)
	id := ID("web", f.rollout.Number)
	loadWhen(t, f.dir, id, func(in *Incident) bool { return in.Kind == KindUndone })
	f.set(1500 * time.Millisecond)
	f.end(t, store.PhaseRolledBack, "analysis", "check errors failed: all 500 (inside the rollback window)")
	f.event(t, 1500*time.Millisecond, "rollout.rolled-back", "rolled back to revision 1: check errors failed", nil)
	loadWhen(t, f.dir, id, func(in *Incident) bool { return in.Kind == KindRolledBack })
	f.set(5 * time.Second) // both recovery rewrites would be due
	inc := loadWhen(t, f.dir, id, func(in *Incident) bool { return in.Complete })
	if inc.Kind != KindRolledBack || !strings.Contains(inc.Reason, "inside the rollback window") {
		t.Fatalf("after the rewrites the bundle is %s: %s", inc.Kind, inc.Reason)
	}
}
