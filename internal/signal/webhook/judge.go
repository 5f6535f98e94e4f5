package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxAnswer is the most of an answer's body that is read.
const maxAnswer = 1 << 20

// Judge POSTs req to the receiver and returns its verdict, or Inconclusive
// with Err and a warning saying why there is none. It is bounded by ctx and
// by the webhook's timeout, and never panics.
func (w *Webhook) Judge(ctx context.Context, req Request) Outcome {
	start := time.Now()
	out := w.call(ctx, req)
	out.Duration = time.Since(start)
	if out.Err != nil {
		out.Verdict = Inconclusive
		out.Warnings = append(out.Warnings, out.Err.Error())
	}
	return out
}

func (w *Webhook) call(ctx context.Context, req Request) Outcome {
	body, err := json.Marshal(req)
	if err != nil {
		return Outcome{Err: fmt.Errorf("encode request: %w", err)}
	}
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(cctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Outcome{Err: fmt.Errorf("%w: %v", ErrInvalidURL, err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "lastgood-webhook")
	resp, err := w.client.Do(hreq)
	if err != nil {
		return Outcome{Err: w.callError(ctx, cctx, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	out := Outcome{Status: resp.StatusCode}
	switch {
	case err != nil:
		out.Err = fmt.Errorf("read the answer of %s: %w", w.url, w.callError(ctx, cctx, err))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		out.Err = fmt.Errorf("%w: %s answered %s%s", ErrStatus, w.url, resp.Status, excerpt(raw))
	case len(raw) > maxAnswer:
		out.Err = fmt.Errorf("%w: %s answered more than %d bytes", ErrBadAnswer, w.url, maxAnswer)
	default:
		out.Verdict, out.Reason, out.Err = w.parse(raw)
	}
	return out
}

// callError says why a call got no answer: the caller gave up, the timeout
// passed, or the receiver could not be reached.
func (w *Webhook) callError(ctx, cctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("call %s: stopped: %w", w.url, ctx.Err())
	case cctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s gave no answer within %s", ErrTimeout, w.url, w.timeout)
	default:
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
}

func (w *Webhook) parse(raw []byte) (verdict, reason string, err error) {
	var r struct {
		Verdict *string `json:"verdict"`
		Reason  string  `json:"reason"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", "", fmt.Errorf(`%w: %s answered a body that is not {"verdict": ..., "reason": ...}: %v%s`,
			ErrBadAnswer, w.url, err, excerpt(raw))
	}
	if r.Verdict == nil {
		return "", r.Reason, fmt.Errorf(`%w: %s answered no "verdict"%s`, ErrBadAnswer, w.url, excerpt(raw))
	}
	switch *r.Verdict {
	case Pass, Fail, Inconclusive:
		return *r.Verdict, r.Reason, nil
	default:
		return "", r.Reason, fmt.Errorf(`%w: %s answered the verdict %q; want "pass", "fail" or "inconclusive"`,
			ErrBadAnswer, w.url, *r.Verdict)
	}
}

// excerpt shows the start of a body in a message.
func excerpt(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return " (empty body)"
	}
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf(": %q", s)
}
