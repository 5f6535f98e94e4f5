package prometheus

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/lastgood/lastgood/internal/manifest"
)

// The three verdicts, spelled as the judge spells them.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// DefaultTimeout bounds one evaluation when WithTimeout is not given.
const DefaultTimeout = 10 * time.Second

// TemplateData is what a query template can refer to: {{.App}},
// {{.Revision}} and {{.StableRevision}}; on an engine that places
// revisions (Kubernetes), also {{.Namespace}} and {{.Pod}}.
type TemplateData struct {
	App            string
	Revision       int
	StableRevision int
	// Namespace is where the app runs; empty on an engine without
	// namespaces, where {{.Namespace}} is a missing key.
	Namespace string
	// Pod is a regular expression matching the names of the new
	// revision's pods (for PromQL's =~, which anchors it); empty on an
	// engine without pods, where {{.Pod}} is a missing key.
	Pod string
}

func (d TemplateData) fields() map[string]any {
	f := map[string]any{"App": d.App, "Revision": d.Revision, "StableRevision": d.StableRevision}
	if d.Namespace != "" {
		f["Namespace"] = d.Namespace
	}
	if d.Pod != "" {
		f["Pod"] = d.Pod
	}
	return f
}

// Outcome is one evaluation of a check.
type Outcome struct {
	// Value is the query's single number whenever one was seen (Err is
	// nil), including an inconclusive verdict between failIf and passIf;
	// zero when Err is set (never NaN, so that it encodes as JSON).
	Value float64
	// Verdict is Pass, Fail or Inconclusive.
	Verdict string
	// Query is the query as rendered for this rollout.
	Query string
	// Warnings say, for people, why the verdict is inconclusive, and repeat
	// the warnings Prometheus sent with its answer.
	Warnings []string
	// Err is why the check could not see one number; it wraps one of the
	// sentinel errors below. Nil for Pass and Fail.
	Err error
}

// Errors that Outcome.Err wraps, for callers that branch on the cause.
var (
	ErrNoData       = errors.New("no data")
	ErrManySeries   = errors.New("more than one series")
	ErrNaN          = errors.New("result is NaN")
	ErrUnreachable  = errors.New("prometheus unreachable")
	ErrTimeout      = errors.New("prometheus did not answer in time")
	ErrQuery        = errors.New("query failed")
	ErrUnsupported  = errors.New("unsupported result type")
	ErrExpression   = errors.New("expression failed")
	ErrTemplateExec = errors.New("query template failed")
)

// Check is a compiled Prometheus check. It is safe for concurrent use.
type Check struct {
	address   string
	query     *template.Template
	rules     rules
	api       v1.API
	transport *http.Transport
	timeout   time.Duration
}

// Option adjusts a Check at Compile.
type Option func(*Check)

// WithTimeout bounds each evaluation (the HTTP request and the query on the
// server) to d instead of DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Check) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// Compile validates a check and prepares it for Evaluate. Every problem is
// reported, joined; each is a *CompileError naming the part (address, query
// template, query, failIf, passIf) and the position, and wraps ErrInvalid.
func Compile(q manifest.Prometheus, failIf, passIf string, opts ...Option) (*Check, error) {
	c := &Check{address: q.Address, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	var errs []error
	if err := validateAddress(q.Address); err != nil {
		errs = append(errs, err)
	}
	tmpl, err := compileQuery(q.Query)
	if err != nil {
		errs = append(errs, err)
	}
	c.query = tmpl
	c.rules, err = compileRules(failIf, passIf)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.transport = newTransport()
	client, err := api.NewClient(api.Config{Address: q.Address, RoundTripper: c.transport})
	if err != nil {
		return nil, &CompileError{Part: PartAddress, Msg: err.Error()}
	}
	c.api = v1.NewAPI(client)
	return c, nil
}

// Close releases the check's idle connections. A check that is no longer
// evaluated should be closed; Evaluate after Close still works.
func (c *Check) Close() { c.transport.CloseIdleConnections() }

// Address is the Prometheus server the check queries.
func (c *Check) Address() string { return c.address }

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2
	t.IdleConnTimeout = 30 * time.Second
	return t
}

func validateAddress(address string) error {
	if address == "" {
		return &CompileError{Part: PartAddress, Msg: "is required (for example http://127.0.0.1:9090)"}
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return &CompileError{Part: PartAddress, Msg: fmt.Sprintf("%q: want an http or https URL such as http://127.0.0.1:9090", address)}
	}
	if u.Host == "" {
		return &CompileError{Part: PartAddress, Msg: fmt.Sprintf("%q has no host", address)}
	}
	return nil
}
