// Package ofrep is an OpenFeature provider for the Go SDK
// (github.com/open-feature/go-sdk) that evaluates flags remotely over
// OFREP, the OpenFeature Remote Evaluation Protocol. It speaks to any OFREP
// server; with lastgood, flag keys are APP/KEY and the token is an
// evaluation token (docs/flags.md).
//
// Every evaluation is one POST /ofrep/v1/evaluate/flags/{key} with the
// evaluation context, so a change of a flag (the kill switch) is seen by
// the next evaluation. After a 429 the provider sends nothing until the
// server's Retry-After has passed, and answers with the default value and
// the GENERAL error code meanwhile.
//
//	p := ofrep.New(ofrep.Options{BaseURL: "http://127.0.0.1:8016", Token: os.Getenv("FLAGS_TOKEN")})
//	openfeature.SetProviderAndWait(p)
//	on, _ := openfeature.NewClient("web").BooleanValue(ctx, "web/new-checkout", false,
//		openfeature.NewEvaluationContext(userID, map[string]any{"country": "NL"}))
package ofrep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// Options configure a Provider.
type Options struct {
	// BaseURL is the OFREP server, like http://127.0.0.1:8016.
	BaseURL string
	// Token, when set, is sent as Authorization: Bearer TOKEN.
	Token string
	// Headers are added to every request.
	Headers map[string]string
	// HTTPClient sends the requests; one with a 5 s timeout when nil.
	HTTPClient *http.Client
}

// Provider evaluates flags over OFREP. It is safe for concurrent use.
type Provider struct {
	opts Options
	http *http.Client

	mu         sync.Mutex
	retryAfter time.Time // no request before this (after a 429)
	now        func() time.Time
}

// New returns a provider for the OFREP server of opts.
func New(opts Options) *Provider {
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	return &Provider{opts: opts, http: hc, now: time.Now}
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: "lastgood-ofrep"}
}

// Hooks returns none.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// BooleanEvaluation evaluates a boolean flag.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, def bool, fc openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d := p.evaluate(ctx, flag, fc)
	out := openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: d}
	if d.ResolutionError != (openfeature.ResolutionError{}) {
		return out
	}
	b, ok := v.(bool)
	if !ok {
		return mismatch(out, flag, "boolean", v)
	}
	out.Value = b
	return out
}

// StringEvaluation evaluates a string flag.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, def string, fc openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d := p.evaluate(ctx, flag, fc)
	out := openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: d}
	if d.ResolutionError != (openfeature.ResolutionError{}) {
		return out
	}
	s, ok := v.(string)
	if !ok {
		return mismatch(out, flag, "string", v)
	}
	out.Value = s
	return out
}

// FloatEvaluation evaluates a number flag.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, def float64, fc openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d := p.evaluate(ctx, flag, fc)
	out := openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: d}
	if d.ResolutionError != (openfeature.ResolutionError{}) {
		return out
	}
	n, ok := v.(json.Number)
	f, err := n.Float64()
	if !ok || err != nil {
		return mismatch(out, flag, "number", v)
	}
	out.Value = f
	return out
}

// IntEvaluation evaluates a number flag whose value is an integer.
func (p *Provider) IntEvaluation(ctx context.Context, flag string, def int64, fc openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d := p.evaluate(ctx, flag, fc)
	out := openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: d}
	if d.ResolutionError != (openfeature.ResolutionError{}) {
		return out
	}
	n, ok := v.(json.Number)
	i, err := n.Int64()
	if !ok || err != nil {
		return mismatch(out, flag, "integer", v)
	}
	out.Value = i
	return out
}

// ObjectEvaluation evaluates an object flag (any JSON value is accepted:
// objects, arrays, and the other types too).
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, def any, fc openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d := p.evaluate(ctx, flag, fc)
	out := openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: d}
	if d.ResolutionError != (openfeature.ResolutionError{}) {
		return out
	}
	out.Value = v
	return out
}

func mismatch[T any](out openfeature.GenericResolutionDetail[T], flag, want string, got any) openfeature.GenericResolutionDetail[T] {
	out.ResolutionError = openfeature.NewTypeMismatchResolutionError(fmt.Sprintf("flag %s is not a %s (its value is %T)", flag, want, got))
	out.Reason = openfeature.ErrorReason
	return out
}

// success and failure are OFREP's response bodies.
type success struct {
	Value    any            `json:"value"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant"`
	Metadata map[string]any `json:"metadata"`
	Key      string         `json:"key"`
}

type failure struct {
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
}

func failed(err openfeature.ResolutionError) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{ResolutionError: err, Reason: openfeature.ErrorReason}
}

// evaluate asks the server for one flag; the value's numbers are
// json.Number.
func (p *Provider) evaluate(ctx context.Context, flag string, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
	p.mu.Lock()
	wait := p.retryAfter.Sub(p.now())
	p.mu.Unlock()
	if wait > 0 {
		return nil, failed(openfeature.NewGeneralResolutionError(fmt.Sprintf("rate limited by the OFREP server for %s more", wait.Round(time.Millisecond))))
	}
	if fc == nil {
		fc = openfeature.FlattenedContext{}
	}
	body, err := json.Marshal(map[string]any{"context": fc})
	if err != nil {
		return nil, failed(openfeature.NewInvalidContextResolutionError("the evaluation context is not JSON: " + err.Error()))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.BaseURL+"/ofrep/v1/evaluate/flags/"+url.PathEscape(flag), bytes.NewReader(body))
	if err != nil {
		return nil, failed(openfeature.NewGeneralResolutionError(err.Error()))
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range p.opts.Headers {
		req.Header.Set(k, v)
	}
	if p.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	}
	res, err := p.http.Do(req)
	if err != nil {
		return nil, failed(openfeature.NewGeneralResolutionError("OFREP request: " + err.Error()))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, failed(openfeature.NewGeneralResolutionError("OFREP response: " + err.Error()))
	}
	switch res.StatusCode {
	case http.StatusOK:
		var s success
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&s); err != nil {
			return nil, failed(openfeature.NewParseErrorResolutionError("OFREP response is not JSON: " + err.Error()))
		}
		return s.Value, openfeature.ProviderResolutionDetail{Reason: openfeature.Reason(s.Reason), Variant: s.Variant, FlagMetadata: s.Metadata}
	case http.StatusBadRequest, http.StatusNotFound:
		var f failure
		json.Unmarshal(data, &f)
		return nil, failed(resolutionError(f))
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, failed(openfeature.NewGeneralResolutionError(fmt.Sprintf("OFREP server refused the token: %s", res.Status)))
	case http.StatusTooManyRequests:
		until := p.now().Add(retryAfter(res.Header.Get("Retry-After"), p.now()))
		p.mu.Lock()
		p.retryAfter = until
		p.mu.Unlock()
		return nil, failed(openfeature.NewGeneralResolutionError("rate limited by the OFREP server until " + until.Format(time.RFC3339)))
	}
	return nil, failed(openfeature.NewGeneralResolutionError(fmt.Sprintf("OFREP server answered %s", res.Status)))
}

func resolutionError(f failure) openfeature.ResolutionError {
	msg := f.ErrorDetails
	switch f.ErrorCode {
	case string(openfeature.FlagNotFoundCode):
		return openfeature.NewFlagNotFoundResolutionError(msg)
	case string(openfeature.ParseErrorCode):
		return openfeature.NewParseErrorResolutionError(msg)
	case string(openfeature.TargetingKeyMissingCode):
		return openfeature.NewTargetingKeyMissingResolutionError(msg)
	case string(openfeature.InvalidContextCode):
		return openfeature.NewInvalidContextResolutionError(msg)
	case string(openfeature.TypeMismatchCode):
		return openfeature.NewTypeMismatchResolutionError(msg)
	}
	if msg == "" {
		msg = "OFREP error " + f.ErrorCode
	}
	return openfeature.NewGeneralResolutionError(msg)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP or RFC 3339
// date. Unreadable or absent, it is one second.
func retryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	for _, layout := range []string{http.TimeFormat, time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	return time.Second
}
