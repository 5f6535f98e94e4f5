package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/revdiff"
	"github.com/lastgood/lastgood/internal/store"
)

// What the API shows of stored records: the store keeps the real values
// (replicas are started from them), every answer carries them redacted
// (docs/redaction.md).

func shownRevision(r store.Revision) store.Revision {
	r.Manifest = redact.JSON(r.Manifest)
	r.Source = redact.Text(r.Source)
	return r
}

func shownRollout(r store.Rollout) store.Rollout { return controller.ShownRollout(r) }

// DiffResult is what `lastgood diff` shows: two revisions compared.
type DiffResult struct {
	App string `json:"app"`
	revdiff.Diff
}

// diff compares ?from= with ?to= (default: the stable revision with to).
func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	app, err := s.Store.App(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	var revs [2]store.Revision
	for i, param := range []string{"from", "to"} {
		v := r.URL.Query().Get(param)
		if v == "" && param == "from" && app.Stable > 0 {
			v = strconv.Itoa(app.Stable)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			if v == "" && param == "from" {
				badRequest(w, "%s has no stable revision yet: name the revision to compare with (from=N)", name)
				return
			}
			badRequest(w, "%s: want a revision number from 1, got %q", param, v)
			return
		}
		if revs[i], err = s.Store.Revision(r.Context(), name, n); err != nil {
			fail(w, err)
			return
		}
	}
	d, err := revdiff.Compare(&revs[0], &revs[1], s.Artifacts)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, DiffResult{App: name, Diff: d})
}

// Diff compares two revisions of app; from 0 means the stable revision.
func (c *Client) Diff(ctx context.Context, app string, from, to int) (DiffResult, error) {
	q := url.Values{"to": {strconv.Itoa(to)}}
	if from > 0 {
		q.Set("from", strconv.Itoa(from))
	}
	var out DiffResult
	err := c.getJSON(ctx, fmt.Sprintf("/api/v1/apps/%s/diff?%s", url.PathEscape(app), q.Encode()), &out)
	return out, err
}
