// Package dashboard serves lastgood's web page on the API address: every
// app with its rollout, traffic weights, check verdicts and replicas, the
// incidents with links to their reports, and the latest events — and, for
// deployers, promote, abort and undo buttons. The page is rendered on the
// server with html/template, refreshes itself every two seconds and
// carries no script and no remote asset; its buttons are plain forms with
// the session's CSRF token, checked by the access gate in front of it.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

// Source is what the dashboard reads, and what its buttons call.
type Source struct {
	// Apps reports every app, by name (controller.Controller.Apps).
	Apps func(ctx context.Context) []controller.AppStatus
	// Events returns up to limit of the latest events, oldest first (log
	// order, as the store returns them); the page shows them newest
	// first. StoreEvents adapts a store.
	Events func(ctx context.Context, limit int) ([]store.Event, error)
	// Incidents is the directory of incident bundles.
	Incidents string
	// Act runs a manual action (promote, abort or undo) on an app for by,
	// the caller's token name. Without it the page has no buttons.
	Act func(ctx context.Context, app, verb, by string) error
	// Now is the clock for "updated at"; time.Now when nil.
	Now func() time.Time
}

// Event readers: what StoreEvents needs of a store.
type eventReader interface {
	LastSeq(ctx context.Context) (int64, error)
	Events(ctx context.Context, q store.EventQuery) ([]store.Event, error)
}

// StoreEvents returns Source.Events for a store: the limit latest events,
// oldest first. The log's sequence numbers have no gaps, so the latest
// limit events are the ones after LastSeq-limit.
func StoreEvents(st eventReader) func(ctx context.Context, limit int) ([]store.Event, error) {
	return func(ctx context.Context, limit int) ([]store.Event, error) {
		last, err := st.LastSeq(ctx)
		if err != nil {
			return nil, err
		}
		return st.Events(ctx, store.EventQuery{AfterSeq: max(0, last-int64(limit)), Limit: limit})
	}
}

// How many events and incidents the page lists.
const (
	eventLimit    = 30
	incidentLimit = 20
)

// verbs are the actions the page offers.
var verbs = []string{"promote", "abort", "undo"}

// Handler serves the dashboard: GET / and GET /incidents/{id} for
// viewers, POST /apps/{app}/{promote|abort|undo} for deployers. It must be
// served behind gate.Wrap (api.Server does that), which identifies the
// caller and checks every form's Origin and CSRF token; a request that did
// not pass it has no role and gets the "token required" page. GET
// /?token=<token> (any path) checks the token and sets the session
// cookie.
func Handler(src Source, gate *access.Gate) http.Handler {
	if src.Now == nil {
		src.Now = time.Now
	}
	d := &dash{src: src, gate: gate}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", access.Require(access.Viewer, Deny, http.HandlerFunc(d.index)))
	mux.Handle("GET /incidents/{id}", access.Require(access.Viewer, Deny, http.HandlerFunc(d.incident)))
	mux.Handle("POST /apps/{app}/{verb}", access.Require(access.Deployer, Deny, http.HandlerFunc(d.act)))
	mux.Handle("/", access.Require(access.Viewer, Deny, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.notFound(w, "There is no page at "+r.URL.Path+".")
	})))
	return headers(d.login(mux))
}

type dash struct {
	src  Source
	gate *access.Gate
}

// login takes ?token=… out of the address: a right token sets the session
// cookie and is answered 303 See Other to the same address without it, so
// the token leaves the address bar, the history and the reloads.
func (d *dash) login(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has("token") {
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet || d.gate.Open() {
			h.ServeHTTP(w, r)
			return
		}
		if _, ok := d.gate.Login(w, r, q.Get("token")); !ok {
			Deny(w, r, http.StatusUnauthorized, "unauthorized", "The token in the address is wrong.")
			return
		}
		q.Del("token")
		to := r.URL.Path
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

// Deny renders the gate's and the routes' refusals as a page: 401 says how
// to sign in, 403 says why not.
func Deny(w http.ResponseWriter, r *http.Request, code int, kind, msg string) {
	headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code == http.StatusUnauthorized {
			text := "This lastgood wants an API token (LASTGOOD_TOKEN, or one from its --tokens-file). Open /?token=… once with it: the dashboard then keeps a session cookie and takes the token out of the address."
			if strings.Contains(msg, "wrong") {
				text = "The token is wrong. " + text
			}
			render(w, code, messagePage, message{Title: "Token required", Text: text})
			return
		}
		render(w, code, messagePage, message{Title: "Refused", Text: msg, Home: true})
	})).ServeHTTP(w, r)
}

// headers sets what every dashboard answer carries: no script may run,
// forms go only to the dashboard itself, no framing, no caching of a page
// that may need the token, no referrer to other origins.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send the forms' Origin as "null"
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// act runs a button's action and, when it is done, sends the browser back
// to the page (POST, redirect, GET: a reload does not repeat it).
func (d *dash) act(w http.ResponseWriter, r *http.Request) {
	app, verb := r.PathValue("app"), r.PathValue("verb")
	if !slices.Contains(verbs, verb) || d.src.Act == nil {
		d.notFound(w, "The dashboard has no action "+verb+".")
		return
	}
	err := d.src.Act(r.Context(), app, verb, access.IdentityFrom(r.Context()).Name)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, controller.ErrConflict):
			code = http.StatusConflict
		case errors.Is(err, controller.ErrInvalid):
			code = http.StatusUnprocessableEntity
		case errors.Is(err, controller.ErrNotFound):
			code = http.StatusNotFound
		}
		render(w, code, messagePage, message{Title: "Not done", Text: fmt.Sprintf("%s %s: %v", verb, app, err), Home: true})
		return
	}
	// The page shows what happened: the rollout and the action's events.
	http.Redirect(w, r, "/#app-"+app, http.StatusSeeOther)
}

func (d *dash) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := d.src.Now().UTC()
	id := access.IdentityFrom(ctx)
	v := view{Now: now, Who: id.Name, Role: id.Role.String()}
	if d.src.Act != nil && id.Role >= access.Deployer {
		v.CSRF = d.gate.Session(w, r)
	}
	if d.src.Apps != nil {
		for _, a := range d.src.Apps(ctx) {
			v.Apps = append(v.Apps, appView(a))
		}
	}
	if d.src.Events != nil {
		evs, err := d.src.Events(ctx, eventLimit)
		if err != nil {
			v.Problems = append(v.Problems, "events: "+err.Error())
		}
		if len(evs) > eventLimit {
			evs = evs[len(evs)-eventLimit:]
		}
		for i := len(evs) - 1; i >= 0; i-- {
			v.Events = append(v.Events, evs[i])
		}
	}
	if d.src.Incidents != "" {
		sums, err := incident.List(d.src.Incidents)
		if err != nil {
			v.Problems = append(v.Problems, err.Error())
		}
		v.MoreIncidents = max(0, len(sums)-incidentLimit)
		for _, s := range sums[:min(len(sums), incidentLimit)] {
			iv := incidentRow{Summary: s, Detect: ms(s.TimeToDetectMs)}
			// The list has no time to roll back; the bundle does.
			if inc, err := incident.Load(d.src.Incidents, s.ID); err == nil {
				iv.Back = ms(inc.Figures.TimeToRollbackMs)
			}
			v.Incidents = append(v.Incidents, iv)
		}
	}
	render(w, http.StatusOK, indexPage, v)
}

// incident serves the report.html of an incident the listing knows.
func (d *dash) incident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !d.known(id) {
		// an id the bundle had before it was renamed: send the browser to its id
		if inc, err := incident.Load(d.src.Incidents, id); err == nil && inc.ID != id && d.known(inc.ID) {
			http.Redirect(w, r, "/incidents/"+inc.ID, http.StatusMovedPermanently)
			return
		}
		d.notFound(w, "There is no incident "+id+".")
		return
	}
	b, err := os.ReadFile(filepath.Join(d.src.Incidents, id, incident.ReportHTML))
	if errors.Is(err, os.ErrNotExist) {
		// A bundle without its report: render it from incident.json.
		inc, lerr := incident.Load(d.src.Incidents, id)
		if lerr != nil {
			d.notFound(w, "The report of incident "+id+" cannot be read: "+lerr.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		incident.HTML(w, inc) // a failure halfway has already sent its status
		return
	}
	if err != nil {
		render(w, http.StatusInternalServerError, messagePage, message{Title: "Error", Text: "The report of incident " + id + " cannot be read: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// known reports whether id names an incident in the listing. Only the
// listing's own ids reach the file system, so no path can be smuggled in.
func (d *dash) known(id string) bool {
	if d.src.Incidents == "" || id == "" || id != filepath.Base(id) || strings.HasPrefix(id, ".") {
		return false
	}
	sums, _ := incident.List(d.src.Incidents)
	for _, s := range sums {
		if s.ID == id {
			return true
		}
	}
	return false
}

func (d *dash) notFound(w http.ResponseWriter, text string) {
	render(w, http.StatusNotFound, messagePage, message{Title: "Not found", Text: text, Home: true})
}

// ms writes a duration in milliseconds briefly; "" when unknown.
func ms(v *int64) string {
	if v == nil {
		return ""
	}
	return brief(time.Duration(*v) * time.Millisecond)
}

func brief(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}
