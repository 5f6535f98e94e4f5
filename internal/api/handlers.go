package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

func (s *Server) hasArtifact(w http.ResponseWriter, r *http.Request) {
	if s.Artifacts.Has(r.PathValue("digest")) {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

// putArtifact stores an uploaded artifact; the digest in the path must be
// the sha256 of the body.
func (s *Server) putArtifact(w http.ResponseWriter, r *http.Request) {
	want := r.PathValue("digest")
	if _, err := s.Artifacts.Path(want); errors.Is(err, artifact.ErrBadDigest) {
		badRequest(w, "%v", err)
		return
	}
	had := s.Artifacts.Has(want)
	got, err := s.Artifacts.Put(r.Body)
	if err != nil {
		fail(w, fmt.Errorf("store artifact: %w", err))
		return
	}
	if got != want {
		if !had && !s.Artifacts.Has(want) {
			if p, err := s.Artifacts.Path(got); err == nil {
				os.Remove(p)
			}
		}
		badRequest(w, "artifact body has digest %s, not %s", got, want)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"digest": got})
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	var req controller.ApplyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxManifestRequest))
	if err := dec.Decode(&req); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid", fmt.Errorf("apply request over %d bytes", maxManifestRequest))
			return
		}
		badRequest(w, "apply request: %v", err)
		return
	}
	req.Actor = access.IdentityFrom(r.Context()).Name
	res, err := s.Controller.Apply(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	if s.Applied != nil {
		s.Applied(r.Context(), req, res)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Controller.Apps(r.Context()))
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	st, err := s.Controller.Status(r.Context(), r.PathValue("app"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) revisions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	revs, err := s.Store.Revisions(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	for i := range revs {
		revs[i] = shownRevision(revs[i])
	}
	writeJSON(w, http.StatusOK, revs)
}

func (s *Server) revision(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		badRequest(w, "revision: want a number from 1, got %q", r.PathValue("n"))
		return
	}
	rev, err := s.Store.Revision(r.Context(), name, n)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, shownRevision(rev))
}

// RolloutRecord is a rollout with the events recorded about it.
type RolloutRecord struct {
	store.Rollout
	Events []store.Event `json:"events,omitempty"`
}

func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	rs, err := s.Store.Rollouts(r.Context(), name, limit)
	if err != nil {
		fail(w, err)
		return
	}
	for i := range rs {
		rs[i] = shownRollout(rs[i])
	}
	writeJSON(w, http.StatusOK, rs)
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		badRequest(w, "rollout id: want a number, got %q", r.PathValue("id"))
		return
	}
	ro, err := s.Store.Rollout(r.Context(), id)
	if err != nil {
		fail(w, fmt.Errorf("rollout %d: %w", id, err))
		return
	}
	evs, err := s.Store.Events(r.Context(), store.EventQuery{Rollout: id})
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RolloutRecord{Rollout: shownRollout(ro), Events: evs})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.Stats(name))
}

// ActionRequest carries the options of promote, undo and delete.
type ActionRequest struct {
	Full       bool `json:"full,omitempty"`       // promote: skip every remaining step
	ToRevision int  `json:"toRevision,omitempty"` // undo: the revision to return to
	// Force, for delete: abort a rollout in progress first; for undo: go
	// to a revision that was rolled back or aborted anyway.
	Force bool `json:"force,omitempty"`
}

var actions = []string{"promote", "abort", "pause", "resume", "undo", "delete"}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	name, verb := r.PathValue("app"), r.PathValue("action")
	if !slices.Contains(actions, verb) {
		writeError(w, http.StatusNotFound, "not-found", fmt.Errorf("no action %q; actions are %v", verb, actions))
		return
	}
	var body json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		badRequest(w, "%s request: %v", verb, err)
		return
	}
	var req ActionRequest
	var given struct {
		ToRevision *int `json:"toRevision"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			badRequest(w, "%s request: %v", verb, err)
			return
		}
		json.Unmarshal(body, &given) // cannot fail where the line above did not
	}
	if verb == "undo" && given.ToRevision != nil && *given.ToRevision < 1 {
		// 0 is not "the previous stable": that is toRevision left out
		fail(w, fmt.Errorf("%w: toRevision: want a revision number from 1, got %d", controller.ErrInvalid, *given.ToRevision))
		return
	}
	if verb == "delete" {
		del, err := s.Controller.Delete(r.Context(), name, req.Force, access.IdentityFrom(r.Context()).Name)
		if err != nil {
			fail(w, err)
			return
		}
		if s.Deleted != nil {
			s.Deleted(r.Context(), name)
		}
		writeJSON(w, http.StatusOK, del)
		return
	}
	res, err := Act(r.Context(), s.Controller, name, verb, req, access.IdentityFrom(r.Context()).Name)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Act runs a manual action other than delete on the controller for by
// (the caller's token name): the one place the API and the dashboard's
// buttons share.
func Act(ctx context.Context, c *controller.Controller, name, verb string, req ActionRequest, by string) (controller.ApplyResult, error) {
	var err error
	res := controller.ApplyResult{App: name}
	switch verb {
	case "promote":
		err = c.Promote(ctx, name, req.Full, by)
	case "abort":
		err = c.Abort(ctx, name, by)
	case "pause":
		err = c.Pause(ctx, name, by)
	case "resume":
		err = c.Resume(ctx, name, by)
	case "undo":
		res, err = c.Undo(ctx, name, req.ToRevision, req.Force, by)
	default:
		return res, fmt.Errorf("no action %q; actions are %v: %w", verb, actions, store.ErrNotFound)
	}
	if err == nil && res.Message == "" {
		res.Message = fmt.Sprintf("%s: %s done", name, verb)
	}
	if err == nil && verb == "abort" {
		if st, err := c.Status(ctx, name); err == nil && st.Rollout != nil && st.Rollout.Incident != "" {
			res.Message += fmt.Sprintf(": rollout #%d aborted, incident %s (`lastgood postmortem %s`)", st.Rollout.ID, st.Rollout.Incident, st.Rollout.Incident)
		}
	}
	return res, err
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	// The incident bundles' heads are witnesses the log must still hold;
	// read before the log (see store.Verify).
	a, err := s.Store.Verify(r.Context(), incident.Witnesses(s.Incidents)...)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// backup sends an online copy of the state database (SQLite's VACUUM
// INTO, one consistent snapshot while writes go on).
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	dir, err := os.MkdirTemp(s.BackupDir, ".backup-")
	if err != nil {
		fail(w, fmt.Errorf("backup: %w", err))
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	if err := s.Store.Backup(r.Context(), path); err != nil {
		fail(w, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fail(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.sqlite3")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	io.Copy(w, f)
}
