package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lastgood/lastgood/internal/store"
)

// events answers the event log as JSON, or — with Accept:
// text/event-stream or ?follow=1 — as a server-sent-events stream that
// first replays what is stored after ?after=SEQ (or Last-Event-ID) and
// then follows new events as they are committed.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := store.EventQuery{App: r.URL.Query().Get("app")}
	after, err := intParam(r, "after")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		fmt.Sscan(id, &after)
	}
	q.AfterSeq = int64(after)
	if q.Limit, err = intParam(r, "limit"); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if q.App != "" {
		if _, err := s.Store.App(r.Context(), q.App); err != nil {
			fail(w, err)
			return
		}
	}
	if !wantsStream(r) {
		evs, err := s.Store.Events(r.Context(), q)
		if err != nil {
			fail(w, err)
			return
		}
		if evs == nil {
			evs = []store.Event{}
		}
		writeJSON(w, http.StatusOK, evs)
		return
	}
	s.stream(w, r, q)
}

// stream writes events as server-sent events until the client leaves. It
// subscribes before replaying, so nothing committed in between is lost, and
// re-reads the store whenever the subscription overflows.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, q store.EventQuery) {
	ctx := r.Context()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	last := q.AfterSeq
	send := func(e store.Event) bool {
		if e.Seq <= last || (q.App != "" && e.App != q.App) {
			return true
		}
		b, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b); err != nil {
			return false
		}
		last = e.Seq
		return true
	}
	for ctx.Err() == nil {
		sub := s.Store.Subscribe(ctx)
		replay, err := s.Store.Events(ctx, store.EventQuery{App: q.App, AfterSeq: last})
		if err != nil {
			return
		}
		for _, e := range replay {
			if !send(e) {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		for e := range sub {
			if !send(e) {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		// The subscription closed: the context ended, or this reader fell
		// behind; loop to re-read from the store.
	}
}
