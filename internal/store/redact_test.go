package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestEventsAreRedactedOnWrite: a secret in an event's message or data
// never reaches the log, so the hash chain — which covers exactly what is
// stored — holds none, and still verifies.
func TestEventsAreRedactedOnWrite(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	data := json.RawMessage(`{"lines":["connect postgres://app:pw-in-data@db/app"],"env":{"DB_PASS":"hunter2"},"digest":"sha256:` + strings.Repeat("ab", 32) + `","n":3}`)
	var stored Event
	err := s.Update(ctx, func(tx *Tx) error {
		var err error
		stored, err = tx.AppendEvent(Event{App: "web", Type: "replica.exited", Message: "exited: password=pw-in-message", Data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v %v", evs, err)
	}
	for _, e := range []Event{stored, evs[0]} {
		all := e.Message + string(e.Data)
		for _, secret := range []string{"pw-in-data", "hunter2", "pw-in-message"} {
			if strings.Contains(all, secret) {
				t.Errorf("the stored event holds %q: %s %s", secret, e.Message, e.Data)
			}
		}
		if !strings.Contains(string(e.Data), `"digest":"sha256:`+strings.Repeat("ab", 32)) || !strings.Contains(string(e.Data), `"n":3`) {
			t.Errorf("redaction took what is no secret: %s", e.Data)
		}
	}
	a, err := s.Verify(ctx)
	if err != nil || !a.OK() {
		t.Fatalf("verify after redaction: %+v %v", a, err)
	}
}
