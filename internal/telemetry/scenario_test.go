package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// writer appends rollouts and events to a real store the way the
// controller does: a rollout and its rollout.started event in one update,
// every later transition with its events in another.
type writer struct {
	t  *testing.T
	s  *store.Store
	t0 time.Time
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (w *writer) at(sec float64) time.Time {
	return w.t0.Add(time.Duration(sec * float64(time.Second)))
}

func (w *writer) update(fn func(tx *store.Tx) error) {
	w.t.Helper()
	if err := w.s.Update(context.Background(), fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *writer) app(name string) {
	w.update(func(tx *store.Tx) error { return tx.PutApp(store.App{Name: name, Listen: "127.0.0.1:0"}) })
}

func (w *writer) start(app string, from, to int, kind string, sec float64) store.Rollout {
	w.t.Helper()
	var ro store.Rollout
	w.update(func(tx *store.Tx) error {
		var err error
		ro, err = tx.CreateRollout(store.Rollout{App: app, From: from, To: to, Strategy: kind,
			Phase: store.PhaseProgressing, Started: w.at(sec)})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{Time: w.at(sec), App: app, Rollout: ro.ID, Revision: to,
			Type: "rollout.started", Message: "rollout started"})
		return err
	})
	return ro
}

// event appends one event of ro; data, when not nil, is marshalled.
func (w *writer) event(ro store.Rollout, sec float64, typ string, data any) store.Event {
	w.t.Helper()
	var e store.Event
	w.update(func(tx *store.Tx) error {
		var err error
		e, err = tx.AppendEvent(eventOf(w.t, ro, w.at(sec), typ, data))
		return err
	})
	return e
}

// end moves ro to phase with trigger and appends its final event.
func (w *writer) end(ro store.Rollout, sec float64, phase, trigger, typ string, data any) store.Event {
	w.t.Helper()
	var e store.Event
	w.update(func(tx *store.Tx) error {
		ro.Phase, ro.Trigger = phase, trigger
		ended := w.at(sec)
		ro.Ended = &ended
		if err := tx.UpdateRollout(ro); err != nil {
			return err
		}
		var err error
		e, err = tx.AppendEvent(eventOf(w.t, ro, w.at(sec), typ, data))
		return err
	})
	return e
}

func eventOf(t *testing.T, ro store.Rollout, at time.Time, typ string, data any) store.Event {
	e := store.Event{Time: at, App: ro.App, Rollout: ro.ID, Revision: ro.To, Type: typ, Message: typ}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		e.Data = b
	}
	return e
}

// verdict is an analysis.verdict event's data as the controller writes it
// (an analysis.Result).
func verdict(check, v string, at time.Time) map[string]any {
	return map[string]any{"check": check, "verdict": v, "reason": "test", "data": true, "at": at, "rollout": 1}
}

// scenario writes the history the tests expect; before runs after the
// first, promoted rollout of web, so callers can start following there.
//
//   - web: 1→2 canary promoted; 2→3 canary rolled back by check "errors"
//     (first traffic at 21s, failing look at 25s, rollback at 26s:
//     detect 4s, roll back 1s), the rolled-back event naming the check
//     and its look as the controller writes it;
//   - api: 4→5 blue-green aborted;
//   - jobs: 1→2 canary rolled back by analysis with no data on the
//     rolled-back event (first traffic 51s, look 53s, rollback 56s:
//     detect 2s, roll back 3s), then 1→3 still progressing.
func scenario(w *writer, before func()) (last int64) {
	for _, a := range []string{"web", "api", "jobs"} {
		w.app(a)
	}
	r1 := w.start("web", 1, 2, "canary", 0)
	w.event(r1, 1, "traffic.weight", nil)
	w.end(r1, 10, store.PhasePromoted, "", "rollout.promoted", nil)
	if before != nil {
		before()
	}

	r2 := w.start("web", 2, 3, "canary", 20)
	w.event(r2, 21, "traffic.weight", nil)
	w.event(r2, 22, "analysis.verdict", verdict("errors", "pass", w.at(22)))
	w.event(r2, 25.2, "analysis.verdict", verdict("errors", "fail", w.at(25)))
	w.end(r2, 26, store.PhaseRolledBack, strategy.TriggerAnalysis, "rollout.rolled-back",
		strategy.Check{Name: "errors", Verdict: "fail", Data: true, Reason: "test", At: w.at(25)})

	r3 := w.start("api", 4, 5, "blueGreen", 30)
	w.end(r3, 40, store.PhaseAborted, strategy.TriggerAbort, "rollout.aborted", nil)

	r4 := w.start("jobs", 1, 2, "canary", 50)
	w.event(r4, 51, "traffic.weight", nil)
	w.event(r4, 53.5, "analysis.verdict", verdict("latency", "fail", w.at(53)))
	w.end(r4, 56, store.PhaseRolledBack, strategy.TriggerAnalysis, "rollout.rolled-back", nil)
	r5 := w.start("jobs", 1, 3, "canary", 60)
	return w.event(r5, 61, "traffic.weight", nil).Seq
}

// latency builds a router histogram of the given observations.
func latency(ds ...time.Duration) router.Histogram {
	h := router.Histogram{Bounds: router.BucketBounds()}
	h.Counts = make([]uint64, len(h.Bounds))
	for _, d := range ds {
		h.Counts[router.BucketOf(d)]++
	}
	return h
}

// traffic is what the scrape-time funcs report: web sends 80:20 to
// revisions 2 and 3, revision 3 answered four requests (one 5xx) in
// 500µs, 3ms, 3ms and 20s.
func testConfig(s *store.Store) Config {
	return Config{
		Store: s,
		Weights: func(app string) map[int]int {
			if app != "web" {
				return nil
			}
			return map[int]int{2: 4, 3: 1}
		},
		Stats: func(app string) []router.RevisionStats {
			if app != "web" {
				return nil
			}
			return []router.RevisionStats{
				{Revision: 2, Requests: 10, Status: [6]uint64{2: 9, 3: 1}, Latency: latency()},
				{Revision: 3, Requests: 4, Errors: 1, Status: [6]uint64{2: 3, 5: 1},
					Latency: latency(500*time.Microsecond, 3*time.Millisecond, 3*time.Millisecond, 20*time.Second)},
			}
		},
	}
}

// follow runs tel until the test ends and waits for it to return.
func follow(t *testing.T, tel *Telemetry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = tel.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitSeq waits until tel has counted the event seq.
func waitSeq(t *testing.T, tel *Telemetry, seq int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tel.LastSeq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("telemetry counted up to event %d, want %d", tel.LastSeq(), seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serve serves tel's handler on 127.0.0.1 until the test ends.
func serve(t *testing.T, tel *Telemetry) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metrics", tel.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
