package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

func dbPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state.db")
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	return openAt(t, dbPath(t))
}

// update runs fn in an Update and fails the test on error.
func update(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// seedApp creates app with n applied revisions.
func seedApp(t *testing.T, s *Store, app string, n int) {
	t.Helper()
	update(t, s, func(tx *Tx) error {
		if err := tx.PutApp(App{Name: app, Listen: "127.0.0.1:8080"}); err != nil {
			return err
		}
		for i := range n {
			if _, err := tx.CreateRevision(sampleRevision(app, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func sampleRevision(app string, i int) Revision {
	return Revision{
		App:       app,
		Digest:    fmt.Sprintf("sha256:%064x", i+1),
		Manifest:  json.RawMessage(fmt.Sprintf(`{"name":%q,"replicas":%d}`, app, i+1)),
		Source:    fmt.Sprintf("name: %s\nreplicas: %d\n", app, i+1),
		Artifacts: map[string]string{"./bin/web": fmt.Sprintf("sha256:%064x", 100+i)},
		Origin:    OriginApply,
	}
}

// appendEvents appends n events in one Update and returns them.
func appendEvents(t *testing.T, s *Store, app string, n int) []Event {
	t.Helper()
	var out []Event
	update(t, s, func(tx *Tx) error {
		for i := range n {
			e, err := tx.AppendEvent(Event{
				App: app, Rollout: int64(i%3 + 1), Revision: i % 4,
				Type: "step", Message: fmt.Sprintf("message %d", i+1),
				Data: json.RawMessage(fmt.Sprintf(`{ "i": %d }`, i+1)),
			})
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out
}
