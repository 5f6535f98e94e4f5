package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

// incidents lists the bundles, of one app with ?app=: an app lastgood has
// never had is 404 (a deleted one still lists its incidents).
func (s *Server) incidents(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app != "" {
		if _, err := s.Store.App(r.Context(), app); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("%w: lastgood has no app %s (`lastgood get apps` lists them)", store.ErrNotFound, app)
			}
			fail(w, err)
			return
		}
	}
	list, err := incident.List(s.Incidents)
	if err != nil {
		fail(w, err)
		return
	}
	out := []incident.Summary{}
	for _, in := range list {
		if app == "" || in.App == app {
			out = append(out, in)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request) {
	in, err := incident.Load(s.Incidents, r.PathValue("id"))
	if errors.Is(err, incident.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not-found", err)
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// Incidents lists the incident bundles, newest first; app "" lists all.
func (c *Client) Incidents(ctx context.Context, app string) ([]incident.Summary, error) {
	var out []incident.Summary
	return out, c.getJSON(ctx, "/api/v1/incidents?app="+url.QueryEscape(app), &out)
}

// Incident returns one incident bundle.
func (c *Client) Incident(ctx context.Context, id string) (*incident.Incident, error) {
	var out incident.Incident
	if err := c.getJSON(ctx, "/api/v1/incidents/"+url.PathEscape(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
