package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// receive reads n events from ch, failing if that takes too long.
func receive(t *testing.T, ch <-chan Event, n int) []Event {
	t.Helper()
	var out []Event
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d events", len(out), n)
			}
			out = append(out, e)
		case <-deadline:
			t.Fatalf("received %d of %d events before the deadline", len(out), n)
		}
	}
	return out
}

// waitClosed fails unless ch closes (after draining) before a deadline,
// and returns how many events it still delivered.
func waitClosed(t *testing.T, ch <-chan Event) int {
	t.Helper()
	n := 0
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-deadline:
			t.Fatal("channel still open at the deadline")
		}
	}
}

func TestSubscribeDeliversCommittedEventsInOrder(t *testing.T) {
	s := openTemp(t)
	appendEvents(t, s, "web", 3) // before the subscription: not delivered
	ch := s.Subscribe(t.Context())

	const writers, updates, perUpdate = 4, 10, 3
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range updates {
				err := s.Update(context.Background(), func(tx *Tx) error {
					for range perUpdate {
						if _, err := tx.AppendEvent(Event{App: "web", Type: "tick"}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	got := receive(t, ch, writers*updates*perUpdate)
	wg.Wait()
	for i, e := range got {
		if want := int64(4 + i); e.Seq != want {
			t.Fatalf("delivery %d has seq %d, want %d", i, e.Seq, want)
		}
		if i > 0 && e.PrevHash != got[i-1].Hash {
			t.Fatalf("event %d delivered without its chain link", e.Seq)
		}
	}
	stored, _ := s.Events(context.Background(), EventQuery{AfterSeq: 3})
	for i := range stored {
		if stored[i].Hash != got[i].Hash || !stored[i].Time.Equal(got[i].Time) {
			t.Fatalf("delivered %+v but stored %+v", got[i], stored[i])
		}
	}
}

func TestSlowSubscriberIsClosedNotWaitedFor(t *testing.T) {
	s := openTemp(t)
	slow := s.Subscribe(t.Context())
	total := subscriberBuffer + 50

	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < total && err == nil; i++ {
			err = s.Update(context.Background(), func(tx *Tx) error {
				_, err := tx.AppendEvent(Event{App: "web", Type: "tick"})
				return err
			})
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("writers blocked behind a subscriber that never reads")
	}
	if n := waitClosed(t, slow); n != subscriberBuffer {
		t.Fatalf("the slow subscriber got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
	// A fresh subscription works, and what was missed can be re-read by Seq.
	fresh := s.Subscribe(t.Context())
	appendEvents(t, s, "web", 1)
	if e := receive(t, fresh, 1)[0]; e.Seq != int64(total+1) {
		t.Fatalf("fresh subscriber got seq %d, want %d", e.Seq, total+1)
	}
	missed, _ := s.Events(context.Background(), EventQuery{AfterSeq: subscriberBuffer})
	if len(missed) != 51 {
		t.Fatalf("re-read %d missed events, want 51", len(missed))
	}
}

func TestSubscriptionEndsWithContextAndStore(t *testing.T) {
	s, err := Open(dbPath(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	byCtx := s.Subscribe(ctx)
	byClose := s.Subscribe(context.Background())
	cancel()
	waitClosed(t, byCtx)

	appendEvents(t, s, "web", 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := waitClosed(t, byClose); n != 2 {
		t.Fatalf("subscriber got %d events before Close, want 2", n)
	}
	if _, ok := <-s.Subscribe(context.Background()); ok {
		t.Fatal("subscribing to a closed store gave an open channel")
	}
}
