// Package api serves lastgood's HTTP API: JSON under /api/v1, a
// server-sent-events stream of the event log, /healthz and /readyz. Every
// request passes the access gate first (allowed Host, the write rules
// against cross-site forgery, tokens and roles); every route states the
// role it needs. The CLI is its main client; its types are shared with the
// CLI through Client.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// Server answers the API.
type Server struct {
	Controller *controller.Controller
	Store      *store.Store
	Artifacts  *artifact.Store
	// Stats returns the router's per-revision counters of an app.
	Stats func(app string) []router.RevisionStats
	// Gate checks every request before its route (see access.Gate.Wrap);
	// an open gate (no tokens) when nil.
	Gate    *access.Gate
	Version string
	// Ready reports whether the controller has recovered its state.
	Ready func() bool
	// Incidents is the directory of incident bundles.
	Incidents string
	// Metrics, when set, serves /metrics, open to anyone who passes the
	// gate unless MetricsRole asks for a token with at least that role.
	Metrics     http.Handler
	MetricsRole access.Role
	// Dashboard, when set, serves every path no other route takes (the
	// dashboard at /). It states its own routes' roles, as it answers a
	// browser: with pages, a session cookie and forms.
	Dashboard http.Handler
	// Degraded, when set and it returns something, is why lastgood is not
	// fully working (a damaged store served read-only, a store that cannot
	// write): /readyz answers 503 with it.
	Degraded func() string
	// BackupDir is where GET /api/v1/backup writes its copy before
	// sending it (the data directory, so it stays on the same disk).
	BackupDir string
	// Page answers the gate's refusals outside /api/ (the dashboard's
	// error page); plain text when nil.
	Page access.Deny
	// Applied and Deleted, when set, are told each apply and delete the
	// controller accepted through the API (the kubernetes engine writes
	// the App object of the app).
	Applied func(ctx context.Context, req controller.ApplyRequest, res controller.ApplyResult)
	Deleted func(ctx context.Context, app string)
}

// route is one API endpoint and the role it needs.
type route struct {
	pattern string // "METHOD /path"
	role    access.Role
	handler http.HandlerFunc
}

// routes is every API endpoint. A route whose method changes state must
// need at least the deployer role; Handler refuses to build otherwise.
func (s *Server) routes() []route {
	return []route{
		{"GET /api/v1/version", access.Viewer, s.version},
		{"HEAD /api/v1/artifacts/{digest}", access.Viewer, s.hasArtifact},
		{"PUT /api/v1/artifacts/{digest}", access.Deployer, s.putArtifact},
		{"POST /api/v1/apply", access.Deployer, s.apply},
		{"GET /api/v1/apps", access.Viewer, s.apps},
		{"GET /api/v1/apps/{app}", access.Viewer, s.app},
		{"GET /api/v1/apps/{app}/revisions", access.Viewer, s.revisions},
		{"GET /api/v1/apps/{app}/revisions/{n}", access.Viewer, s.revision},
		{"GET /api/v1/apps/{app}/diff", access.Viewer, s.diff},
		{"GET /api/v1/apps/{app}/rollouts", access.Viewer, s.rollouts},
		{"GET /api/v1/apps/{app}/stats", access.Viewer, s.stats},
		{"POST /api/v1/apps/{app}/{action}", access.Deployer, s.action},
		{"GET /api/v1/apps/{app}/flags", access.Viewer, s.flags},
		{"GET /api/v1/apps/{app}/flags/{key}", access.Viewer, s.flagHistory},
		{"POST /api/v1/apps/{app}/flags/{key}/{op}", access.Deployer, s.flagAction},
		{"GET /api/v1/rollouts/{id}", access.Viewer, s.rollout},
		{"GET /api/v1/events", access.Viewer, s.events},
		{"GET /api/v1/audit", access.Viewer, s.audit},
		{"GET /api/v1/backup", access.Admin, s.backup},
		{"GET /api/v1/incidents", access.Viewer, s.incidents},
		{"GET /api/v1/incidents/{id}", access.Viewer, s.incident},
		{"GET /api/v1/whoami", access.Viewer, s.whoami},
	}
}

// maxManifestRequest bounds an apply request: a 1 MiB manifest, JSON-quoted.
const maxManifestRequest = 4 << 20

// Handler returns every route behind the gate. It panics when a route
// that changes state asks for less than the deployer role: a programming
// error that the tests catch at once.
func (s *Server) Handler() http.Handler {
	gate := s.Gate
	if gate == nil {
		gate, _ = access.New(access.Config{RawPrefix: RawPrefix})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", access.Require(s.MetricsRole, plainDeny, s.Metrics))
	}
	api := http.NewServeMux()
	for _, rt := range s.routes() {
		method, _, _ := strings.Cut(rt.pattern, " ")
		if method != http.MethodGet && method != http.MethodHead && rt.role < access.Deployer {
			panic(fmt.Sprintf("api: route %q changes state but needs only the %s role", rt.pattern, rt.role))
		}
		api.Handle(rt.pattern, access.Require(rt.role, jsonDeny, rt.handler))
	}
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not-found", fmt.Errorf("no API route %s %s", r.Method, r.URL.Path))
	})
	mux.Handle("/api/", s.recovered(api))
	if s.Dashboard != nil {
		mux.Handle("/", s.recovered(s.Dashboard))
	}
	return gate.Wrap(mux, func(w http.ResponseWriter, r *http.Request, code int, kind, msg string) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			jsonDeny(w, r, code, kind, msg)
		case s.Page != nil && r.URL.Path != "/metrics" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz":
			s.Page(w, r, code, kind, msg)
		default:
			plainDeny(w, r, code, kind, msg)
		}
	})
}

// RawPrefix is where writes carry application/octet-stream: artifact
// uploads.
const RawPrefix = "/api/v1/artifacts/"

func jsonDeny(w http.ResponseWriter, _ *http.Request, code int, kind, msg string) {
	writeError(w, code, kind, errors.New(msg))
}

func plainDeny(w http.ResponseWriter, _ *http.Request, code int, _, msg string) {
	http.Error(w, msg, code)
}

// recovered answers 503 until the controller has restored its state, so no
// request acts on a half-loaded world.
func (s *Server) recovered(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Ready != nil && !s.Ready() {
			writeError(w, http.StatusServiceUnavailable, "unavailable", errors.New("lastgood is restoring its state; try again in a moment"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.Ready != nil && !s.Ready() {
		http.Error(w, "recovering\n", http.StatusServiceUnavailable)
		return
	}
	if s.Degraded != nil {
		if why := s.Degraded(); why != "" {
			http.Error(w, "degraded: "+why+"\n", http.StatusServiceUnavailable)
			return
		}
	}
	io.WriteString(w, "ok\n")
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.Version})
}

// Whoami is who the API takes the caller for.
type Whoami struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id := access.IdentityFrom(r.Context())
	writeJSON(w, http.StatusOK, Whoami{Name: id.Name, Role: id.Role.String()})
}

// Error is the body of every failed API call.
type Error struct {
	Error    string     `json:"error"`
	Kind     string     `json:"kind"` // invalid | conflict | not-found | unauthorized | forbidden | unavailable | read-only | internal
	Problems []*Problem `json:"problems,omitempty"`
}

// Problem is one located manifest problem.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind string, err error) {
	body := Error{Error: err.Error(), Kind: kind}
	var fe *manifest.FieldError
	if es, ok := errors.AsType[manifest.Errors](err); ok {
		for _, e := range es {
			body.Problems = append(body.Problems, problemOf(e))
		}
	} else if errors.As(err, &fe) {
		body.Problems = []*Problem{problemOf(fe)}
	}
	writeJSON(w, code, body)
}

func problemOf(e *manifest.FieldError) *Problem {
	return &Problem{File: e.File, Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Message}
}

// fail maps an error to its HTTP status: invalid input 422, a conflict with
// the app's state 409, something missing 404, anything else 500.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, manifest.ErrInvalid), errors.Is(err, controller.ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, "invalid", err)
	case errors.Is(err, controller.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not-found", err)
	case errors.Is(err, store.ErrReadOnly):
		writeError(w, http.StatusServiceUnavailable, "read-only", err)
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "internal", err)
	default:
		writeError(w, http.StatusInternalServerError, "internal", err)
	}
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, "invalid", fmt.Errorf(format, args...))
}

func intParam(r *http.Request, name string) (int, error) {
	v := r.PathValue(name)
	if v == "" {
		v = r.URL.Query().Get(name)
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: want a non-negative integer, got %q", name, v)
	}
	return n, nil
}

func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.URL.Query().Get("follow") == "1"
}
