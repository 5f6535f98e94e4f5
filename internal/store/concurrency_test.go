package store

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// Readers run while a writer commits: every read sees a consistent,
// never-shrinking state, and nothing races.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	s := openTemp(t)
	seedApp(t, s, "web", 0)
	const writes = 60
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		for i := range writes {
			err := s.Update(context.Background(), func(tx *Tx) error {
				rev, err := tx.CreateRevision(sampleRevision("web", i))
				if err != nil {
					return err
				}
				_, err = tx.AppendEvent(Event{App: "web", Revision: rev.Number, Type: "revision"})
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			var lastLatest, lastEvents int
			for ctx.Err() == nil {
				app, err := s.App(ctx, "web")
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				evs, err := s.Events(ctx, EventQuery{App: "web"})
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				// Each write adds a revision and its event together, and the
				// events were read after the app.
				if app.Latest < lastLatest || len(evs) < lastEvents || len(evs) < app.Latest {
					t.Errorf("inconsistent read: latest %d (was %d), %d events (was %d)", app.Latest, lastLatest, len(evs), lastEvents)
					return
				}
				lastLatest, lastEvents = app.Latest, len(evs)
			}
		})
	}
	wg.Wait()
	app, _ := s.App(context.Background(), "web")
	if app.Latest != writes {
		t.Fatalf("Latest = %d after %d writes", app.Latest, writes)
	}
	audit, err := s.Verify(context.Background())
	if err != nil || !audit.OK() || audit.Events != writes {
		t.Fatalf("Verify = %+v, %v", audit, err)
	}
}
