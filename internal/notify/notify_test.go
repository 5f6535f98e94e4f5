package notify

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seed creates app with one revision whose manifest ends with lines.
func seed(t *testing.T, s *store.Store, app string, lines ...string) {
	t.Helper()
	src := "name: " + app + "\nlisten: 127.0.0.1:8080\nrun: {command: [./web]}\n" + strings.Join(lines, "\n") + "\n"
	m, err := manifest.Parse("app.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.PutApp(store.App{Name: app, Listen: m.Listen}); err != nil {
			return err
		}
		_, err := tx.CreateRevision(store.Revision{App: app, Digest: "sha256:" + strings.Repeat("ab", 32),
			Manifest: m.Canonical(), Source: src, Origin: store.OriginApply})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func appendEvent(t *testing.T, s *store.Store, e store.Event) store.Event {
	t.Helper()
	err := s.Update(context.Background(), func(tx *store.Tx) error {
		var err error
		e, err = tx.AppendEvent(e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs a Notifier until the test ends and returns once it follows
// the log.
func start(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-n.ready:
	case err := <-done:
		t.Fatalf("Run returned at once: %v", err)
	}
}

// config is a Config with a client of its own, closed when the test ends.
func config(t *testing.T, s *store.Store) Config {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return Config{Store: s, Client: &http.Client{Transport: tr}, Backoff: 10 * time.Millisecond}
}

type request struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an httptest server that answers with the statuses given in
// turn (200 once they run out) and records what it is sent.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []request
	arrived  chan request
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses, arrived: make(chan request, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		got := request{req.Header.Clone(), body, time.Now()}
		r.mu.Lock()
		r.got = append(r.got, got)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		r.arrived <- got
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// waitOutcome waits for the first notification event about the event with
// seq and returns it and its data.
func waitOutcome(t *testing.T, s *store.Store, seq int64) (store.Event, outcome) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := s.Events(context.Background(), store.EventQuery{AfterSeq: seq})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if !strings.HasPrefix(e.Type, "notification.") {
				continue
			}
			var out outcome
			if err := json.Unmarshal(e.Data, &out); err != nil {
				t.Fatalf("%s data %s: %v", e.Type, e.Data, err)
			}
			if out.Event == seq {
				return e, out
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no notification event about event %d", seq)
	return store.Event{}, outcome{}
}

func TestCloudEventsSignedAndOnlyListedEvents(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t)
	// The key comes from lastgood's environment, not the manifest.
	t.Setenv("LASTGOOD_TEST_HOOK_KEY", "s3cret")
	seed(t, s, "web", "notifications:", "  - url: "+rcv.URL+"/hook",
		"    events: [rollout.rolled-back]", "    secret: ${LASTGOOD_TEST_HOOK_KEY}")
	// History is not sent again.
	appendEvent(t, s, store.Event{App: "web", Rollout: 1, Revision: 1, Type: "rollout.rolled-back", Message: "old"})
	start(t, New(config(t, s)))

	appendEvent(t, s, store.Event{App: "web", Rollout: 2, Revision: 2, Type: "rollout.promoted", Message: "not listed"})
	e := appendEvent(t, s, store.Event{App: "web", Rollout: 2, Revision: 2, Type: "rollout.rolled-back",
		Message: "rolled back to revision 1: check errors failed", Data: json.RawMessage(`{"trigger":"analysis"}`)})

	rec, out := waitOutcome(t, s, e.Seq)
	if rec.Type != TypeDelivered || out.Attempts != 1 || out.Status != 200 || out.URL != rcv.URL+"/hook" || out.EventType != "rollout.rolled-back" {
		t.Errorf("outcome = %s %+v, want delivered at the first attempt", rec.Type, out)
	}
	if rec.App != "web" || rec.Rollout != 2 || rec.Revision != 2 || !strings.Contains(rec.Message, rcv.URL+"/hook") {
		t.Errorf("outcome event = %+v, want app, rollout and revision copied and the URL named", rec)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong send to arrive
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1 (the listed event only)", len(got))
	}
	req := got[0]
	if sig, want := req.header.Get(SignatureHeader), Sign("s3cret", req.body); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature = %q, want %q", sig, want)
	}
	if ct := req.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var ce struct {
		SpecVersion, ID, Source, Type, Time, DataContentType string
		Data                                                 struct {
			App      string
			Rollout  int64
			Revision int
			Type     string
			Message  string
			Data     map[string]string
		}
	}
	if err := json.Unmarshal(req.body, &ce); err != nil {
		t.Fatalf("body %s: %v", req.body, err)
	}
	if ce.SpecVersion != "1.0" || ce.ID != fmt.Sprint(e.Seq) || ce.Source != "lastgood/web" ||
		ce.Type != "dev.lastgood.rollout.rolled-back" || ce.DataContentType != "application/json" {
		t.Errorf("CloudEvent attributes = %+v", ce)
	}
	if at, err := time.Parse(time.RFC3339Nano, ce.Time); err != nil || !at.Equal(e.Time) {
		t.Errorf("time = %q, want %s", ce.Time, e.Time)
	}
	if d := ce.Data; d.App != "web" || d.Rollout != 2 || d.Revision != 2 || d.Type != "rollout.rolled-back" ||
		d.Message != e.Message || d.Data["trigger"] != "analysis" {
		t.Errorf("data = %+v", d)
	}
	notes, err := s.Events(context.Background(), store.EventQuery{AfterSeq: e.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 {
		t.Errorf("events after the rollback = %+v, want only the one delivery", notes)
	}
}

func TestSlackFormat(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t)
	seed(t, s, "api", "notifications: [{url: '"+rcv.URL+"', format: slack, events: [rollout.aborted]}]")
	start(t, New(config(t, s)))
	e := appendEvent(t, s, store.Event{App: "api", Rollout: 4, Revision: 3, Type: "rollout.aborted", Message: "aborted: all traffic back on revision 2"})
	if rec, _ := waitOutcome(t, s, e.Seq); rec.Type != TypeDelivered {
		t.Fatalf("outcome = %+v", rec)
	}
	req := rcv.requests()[0]
	var body map[string]string
	if err := json.Unmarshal(req.body, &body); err != nil || len(body) != 1 {
		t.Fatalf("body = %s (%v), want only text", req.body, err)
	}
	if want := "lastgood: api rollout #4 (revision 3) rollout.aborted: aborted: all traffic back on revision 2"; body["text"] != want {
		t.Errorf("text = %q, want %q", body["text"], want)
	}
	if sig := req.header.Get(SignatureHeader); sig != "" {
		t.Errorf("signature %q sent without a secret", sig)
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t, 500, 503)
	seed(t, s, "web", "notifications: [{url: '"+rcv.URL+"'}]") // default events
	start(t, New(config(t, s)))
	e := appendEvent(t, s, store.Event{App: "web", Rollout: 1, Revision: 2, Type: "rollout.slo-breached", Message: "slow"})
	rec, out := waitOutcome(t, s, e.Seq)
	if rec.Type != TypeDelivered || out.Attempts != 3 || out.Status != 200 {
		t.Errorf("outcome = %s %+v, want delivered at attempt 3", rec.Type, out)
	}
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	for i := 1; i < 3; i++ {
		if string(got[i].body) != string(got[0].body) {
			t.Errorf("attempt %d sent a different body", i+1)
		}
	}
	// Backoff doubles: 10ms, then 20ms.
	if gap := got[2].at.Sub(got[1].at); gap < 20*time.Millisecond {
		t.Errorf("third attempt came %s after the second, want at least 20ms", gap)
	}
}

func TestSlowReceiverDelaysNothingElse(t *testing.T) {
	s := openStore(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t)
	seed(t, s, "web", "notifications:",
		"  - {url: '"+slow.URL+"', events: [rollout.rolled-back]}",
		"  - {url: '"+fast.URL+"', events: [rollout.promoted]}")
	cfg := config(t, s)
	cfg.Timeout, cfg.Attempts = 300*time.Millisecond, 2
	start(t, New(cfg))

	first := appendEvent(t, s, store.Event{App: "web", Rollout: 1, Type: "rollout.rolled-back", Message: "to the slow one"})
	sent := time.Now()
	second := appendEvent(t, s, store.Event{App: "web", Rollout: 2, Type: "rollout.promoted", Message: "to the fast one"})
	select {
	case <-fast.arrived:
		if d := time.Since(sent); d > 250*time.Millisecond {
			t.Errorf("the fast receiver was reached after %s, want well within the slow one's 300ms timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fast receiver got nothing")
	}
	if rec, _ := waitOutcome(t, s, second.Seq); rec.Type != TypeDelivered {
		t.Errorf("fast outcome = %+v", rec)
	}
	rec, out := waitOutcome(t, s, first.Seq)
	if rec.Type != TypeFailed || out.Attempts != 2 || out.Status != 0 || out.Error != "no answer within 300ms" {
		t.Errorf("slow outcome = %s %+v, want failed after 2 attempts without an answer", rec.Type, out)
	}
	if !strings.Contains(rec.Message, slow.URL) || !strings.Contains(rec.Message, "2 attempts") {
		t.Errorf("message %q names neither the URL nor the attempts", rec.Message)
	}
	fastRec, _ := waitOutcome(t, s, second.Seq)
	if fastRec.Seq > rec.Seq {
		t.Errorf("the fast delivery (event %d) was recorded after the slow failure (event %d)", fastRec.Seq, rec.Seq)
	}
}

// TestOwnEventsNeverSent: even a receiver that asks for notification.*
// events (validation forbids it; an older stored manifest might not) is
// not sent them, so deliveries cannot feed on themselves.
func TestOwnEventsNeverSent(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t)
	seed(t, s, "web", "notifications: [{url: '"+rcv.URL+"', events: [rollout.promoted]}]")
	n := New(config(t, s))
	n.receivers["web"] = receivers{revision: 1, list: []manifest.Notification{{URL: rcv.URL, Format: manifest.FormatCloudEvents,
		Events: []string{"rollout.promoted", TypeDelivered, TypeFailed, "notification.other"}}}}
	start(t, n)
	appendEvent(t, s, store.Event{App: "web", Type: "notification.other", Message: "x"})
	e := appendEvent(t, s, store.Event{App: "web", Rollout: 1, Type: "rollout.promoted", Message: "promoted"})
	if rec, _ := waitOutcome(t, s, e.Seq); rec.Type != TypeDelivered {
		t.Fatalf("outcome = %+v", rec)
	}
	marker := appendEvent(t, s, store.Event{App: "web", Rollout: 1, Type: "rollout.promoted", Message: "again"})
	waitOutcome(t, s, marker.Seq)
	time.Sleep(50 * time.Millisecond)
	for _, r := range rcv.requests() {
		if strings.Contains(string(r.body), `"dev.lastgood.notification.`) {
			t.Errorf("a notification event was sent: %s", r.body)
		}
	}
	if got := len(rcv.requests()); got != 2 {
		t.Errorf("receiver got %d requests, want the 2 promotions", got)
	}
}

// TestDeliveriesInFlightAreBounded: receivers that hang hold at most
// InFlight deliveries at once; the other events wait in the log and are
// delivered, none dropped, once the receivers answer.
func TestDeliveriesInFlightAreBounded(t *testing.T) {
	s := openStore(t)
	var mu sync.Mutex
	inside, most, total := 0, 0, 0
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inside++
		total++
		most = max(most, inside)
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		inside--
		mu.Unlock()
	}))
	t.Cleanup(hang.Close)
	seed(t, s, "web", "notifications:", "  - {url: '"+hang.URL+"', events: [rollout.rolled-back]}")
	cfg := config(t, s)
	cfg.InFlight, cfg.Timeout = 2, 10*time.Second
	start(t, New(cfg))

	var evs []store.Event
	for i := range 6 {
		evs = append(evs, appendEvent(t, s, store.Event{App: "web", Rollout: int64(i + 1), Type: "rollout.rolled-back"}))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a third delivery, were it allowed
	mu.Lock()
	seen, peak := total, most
	mu.Unlock()
	if seen != 2 || peak != 2 {
		t.Fatalf("with receivers hanging and InFlight 2: %d requests arrived, %d at once; want 2 and 2", seen, peak)
	}
	close(release)
	// Deliveries run side by side: the last event's may end before an
	// earlier one's, so every outcome is waited for.
	for _, e := range evs {
		if rec, _ := waitOutcome(t, s, e.Seq); rec.Type != TypeDelivered {
			t.Fatalf("event %d's outcome = %+v, want delivered once the receiver answered", e.Seq, rec)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if total != 6 || most != 2 {
		t.Fatalf("%d deliveries, at most %d at once; want 6, at most 2", total, most)
	}
}
