package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/store"
)

// FlagRequest is the body of POST /api/v1/apps/{app}/flags/{key}/{op}.
type FlagRequest struct {
	Variant    string `json:"variant,omitempty"`    // set
	ToRevision int    `json:"toRevision,omitempty"` // undo; 0: the revision before the latest
}

var flagOps = []string{"set", "off", "on", "undo"}

func (s *Server) flags(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		fail(w, err)
		return
	}
	latest, err := s.Store.LatestFlags(r.Context(), app)
	if err != nil {
		fail(w, err)
		return
	}
	if latest == nil {
		latest = []store.FlagRevision{}
	}
	writeJSON(w, http.StatusOK, latest)
}

func (s *Server) flagHistory(w http.ResponseWriter, r *http.Request) {
	hist, err := s.Store.FlagHistory(r.Context(), r.PathValue("app"), r.PathValue("key"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, hist)
}

func (s *Server) flagAction(w http.ResponseWriter, r *http.Request) {
	app, key, op := r.PathValue("app"), r.PathValue("key"), r.PathValue("op")
	if !slices.Contains(flagOps, op) {
		writeError(w, http.StatusNotFound, "not-found", fmt.Errorf("no flag command %q; commands are %v", op, flagOps))
		return
	}
	var req FlagRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		badRequest(w, "flag %s request: %v", op, err)
		return
	}
	by := access.IdentityFrom(r.Context()).Name
	var res controller.FlagResult
	var err error
	switch op {
	case "set":
		if req.Variant == "" {
			fail(w, fmt.Errorf("%w: variant: required, the variant every evaluation gets", controller.ErrInvalid))
			return
		}
		res, err = s.Controller.SetFlag(r.Context(), app, key, req.Variant, by)
	case "off":
		res, err = s.Controller.OffFlag(r.Context(), app, key, by)
	case "on":
		res, err = s.Controller.OnFlag(r.Context(), app, key, by)
	case "undo":
		res, err = s.Controller.UndoFlag(r.Context(), app, key, req.ToRevision, by)
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Flags returns the latest revision of each flag of an app.
func (c *Client) Flags(ctx context.Context, app string) ([]store.FlagRevision, error) {
	var out []store.FlagRevision
	return out, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/flags", &out)
}

// FlagHistory returns every revision of a flag, oldest first.
func (c *Client) FlagHistory(ctx context.Context, app, key string) ([]store.FlagRevision, error) {
	var out []store.FlagRevision
	return out, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/flags/"+url.PathEscape(key), &out)
}

// Flag runs a flag command: set (req.Variant), off, on or undo.
func (c *Client) Flag(ctx context.Context, app, key, op string, req FlagRequest) (controller.FlagResult, error) {
	var res controller.FlagResult
	return res, c.postJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/flags/"+url.PathEscape(key)+"/"+op, req, &res)
}
