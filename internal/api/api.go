// Package api serves lastgood's HTTP API: JSON under /api/v1, a
// server-sent-events stream of the event log, /healthz and /readyz. The
// CLI is its main client; its types are shared with the CLI through
// Client.
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
	// Token, when set, must be sent as "Authorization: Bearer <token>".
	Token   string
	Version string
	// Ready reports whether the controller has recovered its state.
	Ready func() bool
	// Incidents is the directory of incident bundles.
	Incidents string
	// Metrics, when set, serves /metrics. It is not behind the token, as
	// a Prometheus exporter is not; the API binds 127.0.0.1 by default.
	Metrics http.Handler
	// Dashboard, when set, serves every path no other route takes (the
	// dashboard at /). It does its own authentication, as a browser
	// cannot send the bearer header.
	Dashboard http.Handler
	// Degraded, when set and it returns something, is why lastgood is not
	// fully working (a damaged store served read-only, a store that cannot
	// write): /readyz answers 503 with it.
	Degraded func() string
	// BackupDir is where GET /api/v1/backup writes its copy before
	// sending it (the data directory, so it stays on the same disk).
	BackupDir string
}

// maxManifestRequest bounds an apply request: a 1 MiB manifest, JSON-quoted.
const maxManifestRequest = 4 << 20

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/version", s.version)
	api.HandleFunc("HEAD /api/v1/artifacts/{digest}", s.hasArtifact)
	api.HandleFunc("PUT /api/v1/artifacts/{digest}", s.putArtifact)
	api.HandleFunc("POST /api/v1/apply", s.apply)
	api.HandleFunc("GET /api/v1/apps", s.apps)
	api.HandleFunc("GET /api/v1/apps/{app}", s.app)
	api.HandleFunc("GET /api/v1/apps/{app}/revisions", s.revisions)
	api.HandleFunc("GET /api/v1/apps/{app}/revisions/{n}", s.revision)
	api.HandleFunc("GET /api/v1/apps/{app}/diff", s.diff)
	api.HandleFunc("GET /api/v1/apps/{app}/rollouts", s.rollouts)
	api.HandleFunc("GET /api/v1/apps/{app}/stats", s.stats)
	api.HandleFunc("POST /api/v1/apps/{app}/{action}", s.action)
	api.HandleFunc("GET /api/v1/rollouts/{id}", s.rollout)
	api.HandleFunc("GET /api/v1/events", s.events)
	api.HandleFunc("GET /api/v1/audit", s.audit)
	api.HandleFunc("GET /api/v1/backup", s.backup)
	api.HandleFunc("GET /api/v1/incidents", s.incidents)
	api.HandleFunc("GET /api/v1/incidents/{id}", s.incident)
	mux.Handle("/api/", s.auth(s.recovered(api)))
	if s.Dashboard != nil {
		mux.Handle("/", s.recovered(s.Dashboard))
	}
	return mux
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

func (s *Server) auth(h http.Handler) http.Handler {
	if s.Token == "" {
		return h
	}
	want := "Bearer " + s.Token
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			writeError(w, http.StatusUnauthorized, "unauthorized", errors.New("missing or wrong token (set LASTGOOD_TOKEN)"))
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

// Error is the body of every failed API call.
type Error struct {
	Error    string     `json:"error"`
	Kind     string     `json:"kind"` // invalid | conflict | not-found | unauthorized | unavailable | read-only | internal
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
