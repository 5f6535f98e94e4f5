// Package webhook is the webhook signal: an external judge. lastgood POSTs
// the rollout's context as JSON to a URL and takes the verdict the receiver
// answers. Whatever is not a clear verdict — a non-2xx status, a body that
// is not the expected JSON, an unknown verdict, no answer within the
// timeout, an unreachable receiver — is inconclusive with a warning saying
// what happened, never a pass or a failure.
package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The three verdicts, spelled as the judge spells them.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// DefaultTimeout bounds one call when New is given no timeout.
const DefaultTimeout = 10 * time.Second

// Request is the JSON body POSTed to the receiver.
type Request struct {
	App            string            `json:"app"`
	Revision       int               `json:"revision"`
	StableRevision int               `json:"stableRevision"`
	Rollout        int64             `json:"rollout"`
	Check          string            `json:"check"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

// Response is the JSON body the receiver answers with, with status 200.
type Response struct {
	Verdict string `json:"verdict"` // pass | fail | inconclusive
	Reason  string `json:"reason,omitempty"`
}

// Outcome is one call of the webhook.
type Outcome struct {
	// Verdict is Pass, Fail or Inconclusive.
	Verdict string
	// Reason is the receiver's reason, as it wrote it.
	Reason string
	// Status is the HTTP status the receiver answered; 0 when it did not.
	Status int
	// Duration is how long the call took.
	Duration time.Duration
	// Warnings say, for people, why the verdict is inconclusive when the
	// receiver did not say so itself.
	Warnings []string
	// Err wraps one of the sentinel errors below when the receiver gave no
	// clear verdict; nil when it did (inconclusive included).
	Err error
}

// Errors that Outcome.Err wraps, and that New wraps for a bad URL.
var (
	ErrInvalidURL  = errors.New("invalid webhook URL")
	ErrUnreachable = errors.New("webhook unreachable")
	ErrTimeout     = errors.New("webhook did not answer in time")
	ErrStatus      = errors.New("webhook answered an error status")
	ErrBadAnswer   = errors.New("webhook answer is not a verdict")
)

// Webhook calls one receiver. It is safe for concurrent use.
type Webhook struct {
	url       string
	timeout   time.Duration
	transport *http.Transport
	client    *http.Client
}

// New validates rawURL (http or https, with a host) and returns a webhook
// that calls it, each call bounded by timeout (DefaultTimeout when zero or
// less). Redirects are not followed: a 3xx answer is not a verdict.
func New(rawURL string, timeout time.Duration) (*Webhook, error) {
	if err := ValidateURL(rawURL); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2
	t.IdleConnTimeout = 30 * time.Second
	return &Webhook{
		url:       rawURL,
		timeout:   timeout,
		transport: t,
		client: &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// ValidateURL reports whether rawURL can be a webhook: an absolute http or
// https URL with a host. The error wraps ErrInvalidURL.
func ValidateURL(rawURL string) error {
	if rawURL == "" {
		return fmt.Errorf("%w: the URL is required", ErrInvalidURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%w: %q: want an http or https URL such as https://judge.example/verdict", ErrInvalidURL, rawURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q has no host", ErrInvalidURL, rawURL)
	}
	return nil
}

// URL is the receiver's address.
func (w *Webhook) URL() string { return w.url }

// Timeout bounds each call.
func (w *Webhook) Timeout() time.Duration { return w.timeout }

// Close releases idle connections. Judge after Close still works.
func (w *Webhook) Close() { w.transport.CloseIdleConnections() }
