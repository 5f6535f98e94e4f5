package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request
// body, keyed with the receiver's secret, when it has one.
const SignatureHeader = "X-Lastgood-Signature"

// Sign returns the SignatureHeader value for body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// outcome is the Data of a notification.delivered or notification.failed
// event.
type outcome struct {
	URL       string `json:"url"`
	Event     int64  `json:"event"`     // the Seq of the event sent
	EventType string `json:"eventType"` // its type
	Status    int    `json:"status"`    // the last answer's status; 0 when none came
	Attempts  int    `json:"attempts"`
	Error     string `json:"error,omitempty"`
}

// deliver sends body to r, trying again with exponential backoff, and
// appends the outcome to the event log. It gives up, writing nothing, when
// ctx ends.
func (n *Notifier) deliver(ctx context.Context, r manifest.Notification, e store.Event, body []byte, contentType string) {
	out := outcome{URL: shownURL(r.URL), Event: e.Seq, EventType: e.Type}
	var err error
	wait := n.cfg.Backoff
	for out.Attempts < n.cfg.Attempts {
		if out.Attempts > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait *= 2
		}
		out.Attempts++
		out.Status, err = n.post(ctx, r, body, contentType)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		n.cfg.Log.Debug("notifier: attempt failed", "url", out.URL, "event", e.Seq, "attempt", out.Attempts, "err", err)
	}
	rec := store.Event{App: e.App, Rollout: e.Rollout, Revision: e.Revision, Type: TypeDelivered,
		Message: fmt.Sprintf("%s sent to %s: answered %d at attempt %d", e.Type, out.URL, out.Status, out.Attempts)}
	if err != nil {
		out.Error = err.Error()
		rec.Type = TypeFailed
		rec.Message = fmt.Sprintf("%s not sent to %s after %d attempts: %v", e.Type, out.URL, out.Attempts, err)
		n.cfg.Log.Warn("notifier: delivery failed", "url", out.URL, "event", e.Seq, "attempts", out.Attempts, "err", err)
	}
	rec.Data, _ = json.Marshal(out) // strings and integers only
	err = n.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(rec)
		return err
	})
	if err != nil && ctx.Err() == nil {
		n.cfg.Log.Error("notifier: record the delivery", "url", out.URL, "event", e.Seq, "err", err)
	}
}

// post makes one attempt, bounded by the timeout. Any 2xx answer is a
// success.
func (n *Notifier) post(ctx context.Context, r manifest.Notification, body []byte, contentType string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "lastgood")
	if secret := os.ExpandEnv(r.Secret); secret != "" {
		// ${VAR} is read from lastgood's environment at delivery, so the
		// key itself need not be written in the manifest (and so in
		// every revision).
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return 0, fmt.Errorf("no answer within %s", n.cfg.Timeout)
		}
		return 0, unwrapURLError(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// unwrapURLError drops the "Post \"url\": " prefix, as messages name the
// URL (redacted) themselves.
func unwrapURLError(err error) error {
	if u, ok := err.(*url.Error); ok {
		return u.Err
	}
	return err
}

// shownURL is a receiver's URL as the event log shows it: a password,
// a token in the query, a key in the path hidden (docs/redaction.md).
func shownURL(raw string) string { return redact.Text(raw) }

// cloudEvent is a CloudEvents 1.0 event in structured JSON mode
// (https://github.com/cloudevents/spec, json-format.md).
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            eventData `json:"data"`
}

type eventData struct {
	App      string          `json:"app"`
	Rollout  int64           `json:"rollout,omitempty"`
	Revision int             `json:"revision,omitempty"`
	Type     string          `json:"type"`
	Message  string          `json:"message"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// encode renders e in a receiver's format and returns the body and its
// content type.
func encode(format string, e store.Event) ([]byte, string, error) {
	// Events are redacted when written; a receiver is outside lastgood,
	// so what it is sent is redacted again (it costs nothing to be sure).
	e.Message, e.Data = redact.Text(e.Message), redact.JSON(e.Data)
	switch format {
	case manifest.FormatSlack:
		b, err := json.Marshal(map[string]string{"text": slackText(e)})
		return b, "application/json", err
	case manifest.FormatCloudEvents:
		b, err := json.Marshal(cloudEvent{
			SpecVersion: "1.0", ID: strconv.FormatInt(e.Seq, 10),
			Source: "lastgood/" + e.App, Type: "dev.lastgood." + e.Type,
			Time: e.Time.UTC(), DataContentType: "application/json",
			Data: eventData{App: e.App, Rollout: e.Rollout, Revision: e.Revision, Type: e.Type, Message: e.Message, Data: e.Data},
		})
		return b, "application/cloudevents+json; charset=utf-8", err
	}
	return nil, "", fmt.Errorf("unknown format %q", format)
}

// slackText is one line a person reads in a chat room.
func slackText(e store.Event) string {
	where := e.App
	if e.Rollout != 0 {
		where += fmt.Sprintf(" rollout #%d", e.Rollout)
	}
	if e.Revision != 0 {
		where += fmt.Sprintf(" (revision %d)", e.Revision)
	}
	return fmt.Sprintf("lastgood: %s %s: %s", where, e.Type, e.Message)
}
