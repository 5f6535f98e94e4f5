package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var req = Request{App: "web", Revision: 3, StableRevision: 2, Rollout: 7, Check: "judge",
	Metadata: map[string]string{"team": "payments"}}

func newWebhook(t *testing.T, url string, timeout time.Duration) *Webhook {
	t.Helper()
	w, err := New(url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// receiver answers with status and body, and sends each request body it
// got on seen.
func receiver(t *testing.T, status int, body string) (*httptest.Server, <-chan []byte) {
	t.Helper()
	seen := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		seen <- b
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestReceiverVerdicts(t *testing.T) {
	for _, verdict := range []string{Pass, Fail, Inconclusive} {
		t.Run(verdict, func(t *testing.T) {
			srv, seen := receiver(t, http.StatusOK, `{"verdict": "`+verdict+`", "reason": "because", "extra": 1}`)
			out := newWebhook(t, srv.URL+"/judge", 0).Judge(context.Background(), req)
			if out.Verdict != verdict || out.Reason != "because" || out.Err != nil || out.Status != 200 || len(out.Warnings) != 0 {
				t.Errorf("got %+v, want %s because, no error, no warning", out, verdict)
			}
			var got map[string]any
			if err := json.Unmarshal(<-seen, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"app": "web", "revision": 3.0, "stableRevision": 2.0, "rollout": 7.0, "check": "judge",
				"metadata": map[string]any{"team": "payments"}}
			if !jsonEqual(got, want) {
				t.Errorf("the receiver got %v, want %v", got, want)
			}
		})
	}
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestNoClearVerdictIsInconclusive(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		want    error
		warning string
	}{
		{"server error", 500, "database down", ErrStatus, `500 Internal Server Error: "database down"`},
		{"not found", 404, "", ErrStatus, "404 Not Found (empty body)"},
		{"redirect is not followed", 307, "", ErrStatus, "307"},
		{"garbage", 200, "<html>hello</html>", ErrBadAnswer, `not {"verdict": ..., "reason": ...}`},
		{"empty body", 200, "", ErrBadAnswer, "not {"},
		{"unknown verdict", 200, `{"verdict": "maybe"}`, ErrBadAnswer, `the verdict "maybe"`},
		{"no verdict", 200, `{"reason": "thinking"}`, ErrBadAnswer, `no "verdict"`},
		{"verdict of the wrong type", 200, `{"verdict": true}`, ErrBadAnswer, "not {"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := receiver(t, tc.status, tc.body)
			out := newWebhook(t, srv.URL, 0).Judge(context.Background(), req)
			assertInconclusive(t, out, tc.want, tc.warning)
			if out.Status != tc.status {
				t.Errorf("status %d, want %d", out.Status, tc.status)
			}
		})
	}
}

func assertInconclusive(t *testing.T, out Outcome, want error, warning string) {
	t.Helper()
	if out.Verdict != Inconclusive {
		t.Errorf("verdict %q, want inconclusive", out.Verdict)
	}
	if !errors.Is(out.Err, want) {
		t.Errorf("err %v, want %v", out.Err, want)
	}
	if !strings.Contains(strings.Join(out.Warnings, "\n"), warning) {
		t.Errorf("warnings %q do not mention %q", out.Warnings, warning)
	}
}

func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	// Headers at once, then a body that never ends.
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"verdict": `)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(trickle.Close)
	t.Cleanup(func() { close(release) }) // runs before the Closes: no handler outlives the test

	start := time.Now()
	out := newWebhook(t, srv.URL, 200*time.Millisecond).Judge(context.Background(), req)
	took := time.Since(start)
	assertInconclusive(t, out, ErrTimeout, "no answer within 200ms")
	// The server never answers until the test ends: any return is the
	// timeout's doing; the bound only catches a timeout that is ignored
	// (generous, for a busy machine).
	if took > time.Minute {
		t.Errorf("took %s with a 200ms timeout", took)
	}

	out = newWebhook(t, trickle.URL, 200*time.Millisecond).Judge(context.Background(), req)
	assertInconclusive(t, out, ErrTimeout, "no answer within 200ms")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out = newWebhook(t, srv.URL, time.Hour).Judge(ctx, req)
	if out.Verdict != Inconclusive || !errors.Is(out.Err, context.Canceled) {
		t.Errorf("cancelled caller: got %+v, want inconclusive wrapping context.Canceled", out)
	}
}

func TestUnreachableReceiverIsInconclusive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/judge"
	l.Close()
	out := newWebhook(t, url, 0).Judge(context.Background(), req)
	assertInconclusive(t, out, ErrUnreachable, "connection refused")
}

func TestValidateURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/judge", "https://judge.example/v1/verdict?token=x"} {
		if err := ValidateURL(u); err != nil {
			t.Errorf("ValidateURL(%q): %v", u, err)
		}
	}
	for _, u := range []string{"", "ftp://judge.example/", "127.0.0.1:8080", "judge.example/verdict", "http://", "http:///path", "http://[::1"} {
		err := ValidateURL(u)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ValidateURL(%q) = %v, want ErrInvalidURL", u, err)
		}
		if _, err := New(u, 0); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q) = %v, want ErrInvalidURL", u, err)
		}
	}
}

func TestDefaultTimeout(t *testing.T) {
	if got := newWebhook(t, "http://127.0.0.1:1/", 0).Timeout(); got != 10*time.Second {
		t.Errorf("timeout %s, want 10s", got)
	}
	if got := newWebhook(t, "http://127.0.0.1:1/", 3*time.Second).Timeout(); got != 3*time.Second {
		t.Errorf("timeout %s, want 3s", got)
	}
}
