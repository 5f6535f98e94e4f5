package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

// TestNotificationsShowNoSecret: the receiver's URL in the delivery event
// hides its password and token, and a body never carries a secret, even
// of an event that was not redacted when written.
func TestNotificationsShowNoSecret(t *testing.T) {
	s := openStore(t)
	rcv := newReceiver(t)
	hook := strings.Replace(rcv.URL, "http://", "http://hook:pw-in-url@", 1) + "/hook?token=tok-in-query"
	seed(t, s, "web", "notifications: [{url: '"+hook+"', events: [rollout.aborted]}]")
	start(t, New(config(t, s)))
	e := appendEvent(t, s, store.Event{App: "web", Rollout: 1, Revision: 2, Type: "rollout.aborted", Message: "aborted"})
	rec, out := waitOutcome(t, s, e.Seq)
	if rec.Type != TypeDelivered {
		t.Fatalf("outcome %+v", rec)
	}
	for _, secret := range []string{"pw-in-url", "tok-in-query"} {
		if strings.Contains(rec.Message+string(rec.Data)+out.URL, secret) {
			t.Errorf("the delivery event shows %q: %s %s", secret, rec.Message, rec.Data)
		}
	}
	if !strings.Contains(out.URL, "/hook?token=[redacted]") {
		t.Errorf("url = %q", out.URL)
	}

	for _, format := range []string{manifest.FormatCloudEvents, manifest.FormatSlack} {
		body, _, err := encode(format, store.Event{App: "web", Type: "replica.exited", Message: "exited: password=pw-message",
			Data: json.RawMessage(`{"logTail":["Authorization: Bearer tok-data"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "pw-message") || strings.Contains(string(body), "tok-data") {
			t.Errorf("%s body shows a secret: %s", format, body)
		}
	}
}
