// Package ofrep serves lastgood's feature flags over the OpenFeature
// Remote Evaluation Protocol (OFREP 0.3.0): single and bulk evaluation,
// with ETags, the protocol's error bodies, evaluation tokens of its own
// (never the admin API's), a body size limit and a per-token rate limit.
// A flag's OFREP key is APP/KEY. It reads flags from the store and keeps
// an in-memory snapshot that it reloads whenever a flag revision is
// written (docs/flags.md).
package ofrep

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/store"
)

// DefaultAddr is where `lastgood serve` answers OFREP unless told
// otherwise: flagd's OFREP port.
const DefaultAddr = "127.0.0.1:8016"

// MaxBody bounds a request body, in bytes.
const MaxBody = 64 << 10

// Config says how the server answers.
type Config struct {
	Store *store.Store
	// Tokens are the evaluation tokens; none (nil) leaves OFREP open.
	Tokens *Tokens
	// Rate is how many requests a second one token (or, without tokens,
	// one client address) may make, with bursts of Burst; 0 is no limit.
	Rate  float64
	Burst int
	Log   *slog.Logger
	// Now is the clock of the rate limiter; time.Now when nil.
	Now func() time.Time
}

// Server answers OFREP requests.
type Server struct {
	cfg     Config
	snap    atomic.Pointer[snapshot]
	limiter limiter
}

// New returns a server with an empty snapshot; Load or Run fill it.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg}
	s.limiter = limiter{rate: cfg.Rate, burst: float64(max(cfg.Burst, 1)), buckets: map[string]*bucket{}}
	s.snap.Store(&snapshot{byKey: map[string]*entry{}})
	return s
}

// snapshot is every served flag, immutable once built.
type snapshot struct {
	byKey   map[string]*entry // APP/KEY
	keys    []string          // sorted
	version string            // content address of the flag set
}

type entry struct {
	app, key string
	revision int
	flag     *flags.Compiled
}

// Load reads the latest revision of every flag of every app not deleted.
func (s *Server) Load(ctx context.Context) error {
	apps, err := s.cfg.Store.Apps(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, a := range apps {
		live[a.Name] = true
	}
	revs, err := s.cfg.Store.LatestFlags(ctx, "")
	if err != nil {
		return err
	}
	snap := &snapshot{byKey: map[string]*entry{}}
	h := sha256.New()
	for _, fr := range revs {
		if !live[fr.App] {
			continue
		}
		var spec flags.Spec
		if err := json.Unmarshal(fr.Spec, &spec); err != nil {
			return fmt.Errorf("flag %s/%s revision %d: %w", fr.App, fr.Key, fr.Number, err)
		}
		k := fr.App + "/" + fr.Key
		snap.byKey[k] = &entry{app: fr.App, key: fr.Key, revision: fr.Number, flag: flags.Compile(&spec)}
		snap.keys = append(snap.keys, k)
		fmt.Fprintf(h, "%s\x00%d\x00", k, fr.Number)
	}
	slices.Sort(snap.keys)
	snap.version = hex.EncodeToString(h.Sum(nil))[:32]
	s.snap.Store(snap)
	return nil
}

// Run loads the flags and reloads them on every flag event (and every
// deleted app) until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	for {
		events := s.cfg.Store.Subscribe(ctx)
		if err := s.Load(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("load flags for OFREP", "err", err)
		}
		for ev := range events {
			if ev.Type != store.EventFlag && ev.Type != "app.deleted" {
				continue
			}
			if err := s.Load(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Log.Error("reload flags for OFREP", "err", err)
			}
		}
		// The channel closed: ctx ended, the store closed, or we fell
		// behind; subscribe again and reload whatever was missed.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Handler returns the OFREP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ofrep/v1/evaluate/flags/{key...}", s.single)
	mux.HandleFunc("POST /ofrep/v1/evaluate/flags", s.bulk)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, generalError{fmt.Sprintf("no OFREP route %s %s; lastgood answers POST /ofrep/v1/evaluate/flags and /ofrep/v1/evaluate/flags/{app}/{key}", r.Method, r.URL.Path)})
	})
	return mux
}

// Success is one successful evaluation (OFREP's evaluationSuccess).
type Success struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant"`
	Metadata map[string]any  `json:"metadata,omitempty"`
}

// Failure is one failed evaluation (OFREP's evaluationFailure and
// flagNotFound), or a failed bulk request (without Key).
type Failure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// Bulk is the body of a successful bulk evaluation; each item is a
// Success or a Failure.
type Bulk struct {
	Flags    []any          `json:"flags"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type generalError struct {
	ErrorDetails string `json:"errorDetails"`
}

// OFREP's error codes.
const (
	FlagNotFound        = "FLAG_NOT_FOUND"
	ParseError          = "PARSE_ERROR"
	TargetingKeyMissing = "TARGETING_KEY_MISSING"
	InvalidContext      = "INVALID_CONTEXT"
	General             = "GENERAL"
)

// caller is who asks: their token, or nil when OFREP is open.
func (s *Server) caller(w http.ResponseWriter, r *http.Request) (tok *Token, ok bool) {
	limitKey := ""
	if s.cfg.Tokens.Len() > 0 {
		secret := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); secret == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			secret = strings.TrimSpace(auth[7:])
		}
		if secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lastgood-ofrep"`)
			writeJSON(w, http.StatusUnauthorized, generalError{"an evaluation token is required: Authorization: Bearer TOKEN (or X-API-Key)"})
			return nil, false
		}
		if tok, ok = s.cfg.Tokens.Lookup(secret); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lastgood-ofrep", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, generalError{"unknown evaluation token (the API's tokens are not evaluation tokens)"})
			return nil, false
		}
		limitKey = "token:" + tok.Name
	} else {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		limitKey = "addr:" + host
	}
	if wait, ok := s.limiter.take(limitKey, s.cfg.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeJSON(w, http.StatusTooManyRequests, generalError{"rate limit reached; retry after the Retry-After header's seconds"})
		return nil, false
	}
	return tok, true
}

// readContext reads the request's evaluation context. It answers the
// request itself (400 and the spec's body) when it cannot.
func readContext(w http.ResponseWriter, r *http.Request, key string) (map[string]any, bool) {
	ctx, code, details := parseRequest(http.MaxBytesReader(w, r.Body, MaxBody))
	if code != "" {
		writeJSON(w, http.StatusBadRequest, Failure{Key: key, ErrorCode: code, ErrorDetails: details})
		return nil, false
	}
	return ctx, true
}

// parseRequest reads {"context": {...}} and returns the context, or an
// OFREP error code with its details. An empty body is an empty context.
func parseRequest(body io.Reader) (map[string]any, string, string) {
	data, err := io.ReadAll(body)
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, InvalidContext, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)
	}
	if err != nil {
		return nil, ParseError, "reading the request body: " + err.Error()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, "", ""
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		return nil, ParseError, "the request body is not a JSON object: " + err.Error()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ParseError, "the request body has data after its JSON object"
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return map[string]any{}, "", ""
	}
	var ctx map[string]any
	if err := json.Unmarshal(req.Context, &ctx); err != nil {
		return nil, InvalidContext, "context must be a JSON object"
	}
	if tk, ok := ctx["targetingKey"]; ok {
		if _, isString := tk.(string); !isString {
			return nil, InvalidContext, "context.targetingKey must be a string"
		}
	}
	return ctx, "", ""
}

func (s *Server) single(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	tok, ok := s.caller(w, r)
	if !ok {
		return
	}
	app, _, found := strings.Cut(key, "/")
	if found && tok != nil && !tok.Allows(app) {
		writeJSON(w, http.StatusForbidden, generalError{fmt.Sprintf("evaluation token %s may not evaluate the flags of app %s", tok.Name, app)})
		return
	}
	ctx, ok := readContext(w, r, key)
	if !ok {
		return
	}
	e := s.snap.Load().byKey[key]
	if e == nil {
		details := fmt.Sprintf("flag %q was not found", key)
		if !found {
			details += "; lastgood's flag keys are APP/KEY, like web/new-checkout"
		}
		writeJSON(w, http.StatusNotFound, Failure{Key: key, ErrorCode: FlagNotFound, ErrorDetails: details})
		return
	}
	item, failed := evaluate(e, key, ctx)
	code := http.StatusOK
	if failed {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, item)
}

func evaluate(e *entry, key string, ctx map[string]any) (any, bool) {
	res := e.flag.Evaluate(e.app, ctx)
	if res.Reason == flags.Error {
		return Failure{Key: key, ErrorCode: string(res.ErrorCode), ErrorDetails: res.ErrorMessage}, true
	}
	return Success{Key: key, Value: res.Value, Reason: string(res.Reason), Variant: res.Variant,
		Metadata: map[string]any{"flagRevision": e.revision}}, false
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.caller(w, r)
	if !ok {
		return
	}
	ctx, ok := readContext(w, r, "")
	if !ok {
		return
	}
	snap := s.snap.Load()
	scope := "*"
	if tok != nil {
		scope = tok.Name
	}
	canon, _ := json.Marshal(ctx) // map keys sorted: the same context, the same bytes
	sum := sha256.Sum256([]byte(snap.version + "\x00" + scope + "\x00" + string(canon)))
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if matches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	out := Bulk{Flags: []any{}, Metadata: map[string]any{"version": snap.version}}
	for _, k := range snap.keys {
		e := snap.byKey[k]
		if tok != nil && !tok.Allows(e.app) {
			continue
		}
		item, _ := evaluate(e, k, ctx)
		out.Flags = append(out.Flags, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// matches reports whether an If-None-Match header names etag.
func matches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// limiter is a token bucket per caller.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; past it, every bucket starts
// full again.
const maxBuckets = 10000

// take spends one request of key's bucket; when it is empty it returns how
// long until it holds one.
func (l *limiter) take(key string, now time.Time) (time.Duration, bool) {
	if l.rate <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}
