// Package otlp is lastgood's OpenTelemetry trace receiver: OTLP/HTTP
// `POST /v1/traces`, protobuf or JSON, optionally gzip-compressed, decoded
// with the Collector's own pdata types. It is a signal like the router:
// it keeps per-revision aggregates (counts, per-task distributions, a
// small reservoir of failed spans) that the analysis reads, never the
// spans themselves, so its memory is bounded whatever the traffic.
//
// A span belongs to the app and revision its resource names
// (lastgood.app, lastgood.revision — lastgood sets them in
// OTEL_RESOURCE_ATTRIBUTES of every replica). Spans of an app or revision
// that Config.Known does not accept are counted and dropped, and the
// sender is told so in the response's partial_success.
//
// The aggregates follow the OpenTelemetry GenAI semantic conventions for
// agents (genai.go) but are kept per Key, which may also name a cohort
// attribute's value, so that other signals (feature-flag variants) reuse
// them.
package otlp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// TracesPath is the OTLP/HTTP path of traces.
const TracesPath = "/v1/traces"

// Limits of a Receiver.
const (
	// DefaultMaxBody bounds one request's body, before and after gzip:
	// 4 MiB, the default of the Collector's gRPC receiver.
	DefaultMaxBody = 4 << 20
	// maxPending bounds the traces whose invoke_agent span has not come
	// yet, per receiver; the oldest is forgotten first.
	maxPending = 4096
	// maxCohortValues bounds the values of one cohort attribute per
	// revision; spans with other values count in the revision only.
	maxCohortValues = 16
)

// Config configures a Receiver.
type Config struct {
	// Known reports whether spans of an app's revision are wanted; nil
	// accepts every one.
	Known func(app string, revision int) bool
	// MaxBody bounds a request body, compressed and decompressed; 0 means
	// DefaultMaxBody.
	MaxBody int64
	// Cohorts are span or resource attributes whose values split a
	// revision's spans into cohorts (Key.Attribute).
	Cohorts []string
}

// Stats are the receiver's own counters.
type Stats struct {
	Requests uint64 `json:"requests"` // accepted requests
	Rejected uint64 `json:"rejected"` // requests answered 4xx
	Spans    uint64 `json:"spans"`    // spans aggregated
	// Unknown are spans dropped because Known refused their app or
	// revision; Unlabelled those whose resource has no lastgood.app or
	// lastgood.revision.
	Unknown    uint64 `json:"unknown"`
	Unlabelled uint64 `json:"unlabelled"`
	// Forgotten are traces whose tool calls were forgotten before their
	// invoke_agent span arrived (more than maxPending open at once).
	Forgotten uint64 `json:"forgotten"`
}

type traceKey struct {
	app string
	rev int
	id  pcommon.TraceID
}

// Receiver is an http.Handler for OTLP/HTTP traces that aggregates what
// it receives. It is safe for concurrent use.
type Receiver struct {
	cfg Config

	mu      sync.Mutex
	aggs    map[Key]*Aggregate
	cohorts map[Key]int // values seen per (app, revision, attribute)
	pending map[traceKey]*task
	// order is the pending tasks, oldest first; an entry whose task is no
	// longer pending (completed) is stale and skipped, and order is
	// compacted when it holds twice as many entries as pending.
	order []pendingRef
	// live are the pending tasks holding spans of the request being
	// ingested (task.live), copied out before Ingest returns.
	live []*task
	// capturing counts the pending tasks whose spans are captured;
	// samples are the traces kept per revision (samples.go).
	capturing int
	samples   map[Key]*traceSamples
	stats     Stats
}

// New returns a Receiver.
func New(cfg Config) *Receiver {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	return &Receiver{cfg: cfg, aggs: map[Key]*Aggregate{}, cohorts: map[Key]int{}, pending: map[traceKey]*task{}, samples: map[Key]*traceSamples{}}
}

// Aggregate returns a copy of the aggregate of k, and false when no span
// of it arrived.
func (r *Receiver) Aggregate(k Key) (Aggregate, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.aggs[k]
	if !ok {
		return Aggregate{}, false
	}
	return a.Clone(), true
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Forget drops the aggregates of an app's revisions (pruned, or the app
// deleted: nil drops them all).
func (r *Receiver) Forget(app string, revisions []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gone := func(a string, rev int) bool { return a == app && (revisions == nil || slices.Contains(revisions, rev)) }
	for k := range r.aggs {
		if gone(k.App, k.Revision) {
			delete(r.aggs, k)
		}
	}
	for k := range r.cohorts {
		if gone(k.App, k.Revision) {
			delete(r.cohorts, k)
		}
	}
	for k := range r.samples {
		if gone(k.App, k.Revision) {
			delete(r.samples, k)
		}
	}
	r.order = slices.DeleteFunc(r.order, func(p pendingRef) bool {
		if gone(p.key.app, p.key.rev) {
			if r.pending[p.key] == p.t {
				r.drop(p.key)
			}
			return true
		}
		return false
	})
}

// pendingRef is one entry of Receiver.order.
type pendingRef struct {
	key traceKey
	t   *task
}

// evictOldest forgets the oldest pending task.
func (r *Receiver) evictOldest() {
	for len(r.order) > 0 {
		p := r.order[0]
		r.order = r.order[1:]
		if r.pending[p.key] == p.t {
			r.drop(p.key)
			return
		}
	}
}

// capture adds a span to a captured task, by reference while the request
// is being ingested.
func (r *Receiver) capture(t *task, s ptrace.Span) {
	if len(t.live) == 0 {
		r.live = append(r.live, t)
	}
	t.capture(s)
}

// drop removes a pending task (its order entry becomes stale).
func (r *Receiver) drop(k traceKey) {
	if t := r.pending[k]; t != nil && t.captured {
		r.capturing--
	}
	delete(r.pending, k)
}

// RequestError is a request the receiver refuses: Status is the HTTP
// status, Reason says why.
type RequestError struct {
	Status int
	Reason string
}

func (e *RequestError) Error() string { return e.Reason }

func refuse(status int, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// Encodings of a body, by content type.
const (
	protobufType = "application/x-protobuf"
	jsonType     = "application/json"
)

// ServeHTTP answers POST /v1/traces: 200 with an ExportTraceServiceResponse
// (partial_success when spans were dropped), 400 for a body that does not
// decode, 405 for another method, 413 for a body over the limit, 415 for
// another content type or encoding.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != TracesPath {
		http.NotFound(w, req)
		return
	}
	ctype := contentType(req.Header.Get("Content-Type"))
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(w, ctype, refuse(http.StatusMethodNotAllowed, "%s %s: use POST", req.Method, TracesPath))
		return
	}
	td, rerr := r.decode(w, req, ctype)
	if rerr != nil {
		r.fail(w, ctype, rerr)
		return
	}
	dropped := r.Ingest(td)
	resp := ptraceotlp.NewExportResponse()
	if dropped > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedSpans(int64(dropped))
		ps.SetErrorMessage("spans of an app or revision lastgood does not run, or without lastgood.app and lastgood.revision resource attributes, were dropped")
	}
	var body []byte
	var err error
	if ctype == jsonType {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func contentType(h string) string {
	t, _, err := mime.ParseMediaType(h)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(h))
	}
	return t
}

// decode reads and decodes a request's body.
func (r *Receiver) decode(w http.ResponseWriter, req *http.Request, ctype string) (ptrace.Traces, *RequestError) {
	if ctype != protobufType && ctype != jsonType {
		return ptrace.Traces{}, refuse(http.StatusUnsupportedMediaType, "content type %q: want %s or %s", ctype, protobufType, jsonType)
	}
	if req.ContentLength > r.cfg.MaxBody {
		return ptrace.Traces{}, refuse(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", req.ContentLength, r.cfg.MaxBody)
	}
	raw, rerr := readLimited(http.MaxBytesReader(w, req.Body, r.cfg.MaxBody), r.cfg.MaxBody)
	if rerr != nil {
		return ptrace.Traces{}, rerr
	}
	body, rerr := decompress(req.Header.Get("Content-Encoding"), raw, r.cfg.MaxBody)
	if rerr != nil {
		return ptrace.Traces{}, rerr
	}
	return Decode(ctype, body)
}

func readLimited(rd io.Reader, limit int64) ([]byte, *RequestError) {
	b, err := io.ReadAll(rd)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, refuse(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", limit)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "reading the body: %v", err)
	}
	return b, nil
}

// decompress undoes a Content-Encoding, refusing a result over limit.
func decompress(encoding string, raw []byte, limit int64) ([]byte, *RequestError) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, refuse(http.StatusBadRequest, "gzip body: %v", err)
		}
		b, err := io.ReadAll(io.LimitReader(zr, limit+1))
		if err != nil {
			return nil, refuse(http.StatusBadRequest, "gzip body: %v", err)
		}
		if int64(len(b)) > limit {
			return nil, refuse(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes once decompressed", limit)
		}
		return b, nil
	}
	return nil, refuse(http.StatusUnsupportedMediaType, "content encoding %q: want gzip or none", encoding)
}

// Decode decodes an OTLP ExportTraceServiceRequest in the encoding of
// content type ctype with pdata's unmarshalers.
func Decode(ctype string, body []byte) (ptrace.Traces, *RequestError) {
	req := ptraceotlp.NewExportRequest()
	var err error
	switch ctype {
	case protobufType:
		err = req.UnmarshalProto(body)
	case jsonType:
		err = req.UnmarshalJSON(body)
	default:
		return ptrace.Traces{}, refuse(http.StatusUnsupportedMediaType, "content type %q: want %s or %s", ctype, protobufType, jsonType)
	}
	if err != nil {
		return ptrace.Traces{}, refuse(http.StatusBadRequest, "malformed %s ExportTraceServiceRequest: %v", ctype, err)
	}
	return req.Traces(), nil
}

// fail answers a refused request with a google.rpc.Status in the
// request's encoding (protobuf unless it was JSON), as OTLP/HTTP asks.
func (r *Receiver) fail(w http.ResponseWriter, ctype string, e *RequestError) {
	r.mu.Lock()
	r.stats.Rejected++
	r.mu.Unlock()
	code := 3 // INVALID_ARGUMENT
	if e.Status == http.StatusRequestEntityTooLarge {
		code = 8 // RESOURCE_EXHAUSTED
	}
	if ctype == jsonType {
		w.Header().Set("Content-Type", jsonType)
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", code, e.Reason)
		return
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(code))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, e.Reason)
	w.Header().Set("Content-Type", protobufType)
	w.WriteHeader(e.Status)
	w.Write(b)
}

// Ingest aggregates decoded traces and returns how many spans it dropped.
// Within one call, a trace's other spans are counted before its
// invoke_agent spans, so that a task's tool calls exported in the same
// batch as the task are its whatever their order.
func (r *Receiver) Ingest(td ptrace.Traces) (dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests++
	type agentSpan struct {
		span    ptrace.Span
		app     string
		rev     int
		cohorts []Key
	}
	var agents []agentSpan
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		n := spanCount(rs)
		appV, okApp := res.Get(AttrApp)
		rev, okRev := revisionOf(res)
		if !okApp || !okRev || appV.Str() == "" {
			r.stats.Unlabelled += uint64(n)
			dropped += n
			continue
		}
		app := appV.Str()
		if r.cfg.Known != nil && !r.cfg.Known(app, rev) {
			r.stats.Unknown += uint64(n)
			dropped += n
			continue
		}
		// Without cohorts every span of the resource counts in its
		// revision's aggregate alone: one slice for them all.
		revKeys := []Key{{App: app, Revision: rev}}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				r.stats.Spans++
				keys := revKeys
				if len(r.cfg.Cohorts) > 0 {
					keys = r.keys(app, rev, res, s.Attributes())
				}
				op := operation(s)
				if op == OpInvokeAgent {
					agents = append(agents, agentSpan{s, app, rev, keys})
					continue
				}
				for _, key := range keys {
					r.agg(key).span(s, op)
				}
				r.note(traceKey{app, rev, s.TraceID()}, s, op)
			}
		}
	}
	for _, a := range agents {
		tk := traceKey{a.app, a.rev, a.span.TraceID()}
		t := r.pending[tk]
		if t != nil {
			r.drop(tk) // its order entry is now stale
		}
		for _, key := range a.cohorts {
			r.agg(key).task(a.span, t)
		}
		if t != nil && t.captured {
			k := Key{App: a.app, Revision: a.rev}
			if r.samples[k] == nil {
				r.samples[k] = &traceSamples{}
			}
			r.samples[k].offer(a.span, t)
		}
		if t != nil {
			t.live = nil // complete: nothing to copy out
		}
	}
	// The spans of this request are the caller's: a task still open
	// keeps copies.
	for _, t := range r.live {
		t.keep()
	}
	r.live = r.live[:0]
	return dropped
}

func spanCount(rs ptrace.ResourceSpans) int {
	n := 0
	for j := range rs.ScopeSpans().Len() {
		n += rs.ScopeSpans().At(j).Spans().Len()
	}
	return n
}

// keys returns the aggregates a span counts in: its revision's, and one
// per cohort attribute it carries (span attributes before resource ones).
func (r *Receiver) keys(app string, rev int, res, attrs pcommon.Map) []Key {
	keys := []Key{{App: app, Revision: rev}}
	for _, name := range r.cfg.Cohorts {
		v, ok := attrs.Get(name)
		if !ok {
			v, ok = res.Get(name)
		}
		if !ok {
			continue
		}
		k := Key{App: app, Revision: rev, Attribute: name, Value: v.AsString()}
		if _, seen := r.aggs[k]; !seen {
			ck := Key{App: app, Revision: rev, Attribute: name}
			if r.cohorts[ck] >= maxCohortValues {
				continue
			}
			r.cohorts[ck]++
		}
		keys = append(keys, k)
	}
	return keys
}

func (r *Receiver) agg(k Key) *Aggregate {
	a := r.aggs[k]
	if a == nil {
		a = &Aggregate{}
		r.aggs[k] = a
	}
	return a
}

// note remembers what a span adds to its trace's task until the task's
// invoke_agent span arrives.
func (r *Receiver) note(tk traceKey, s ptrace.Span, op string) {
	toks, hasToks := tokens(s.Attributes())
	t := r.pending[tk]
	if op != OpExecuteTool && !hasToks {
		if t != nil && t.captured {
			r.capture(t, s)
		}
		return
	}
	if t == nil {
		if len(r.pending) >= maxPending {
			r.evictOldest()
			r.stats.Forgotten++
		}
		t = &task{captured: r.capturing < maxCaptured}
		if t.captured {
			r.capturing++
		}
		r.pending[tk] = t
		r.order = append(r.order, pendingRef{tk, t})
		if len(r.order) > 2*maxPending {
			r.order = slices.DeleteFunc(r.order, func(p pendingRef) bool { return r.pending[p.key] != p.t })
		}
	}
	if t.captured {
		r.capture(t, s)
	}
	if op == OpExecuteTool {
		name := otherTool
		if v, ok := s.Attributes().Get(attrToolName); ok {
			name = v.AsString()
		}
		t.add(uint64(s.StartTimestamp()), name)
	}
	t.tokens += toks
}
