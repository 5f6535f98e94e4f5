// Package dashboard serves lastgood's read-only web page on the API
// address: every app with its rollout, traffic weights, check verdicts and
// replicas, the incidents with links to their reports, and the latest
// events. The page is rendered on the server with html/template, refreshes
// itself every two seconds and carries no script and no remote asset.
// Every action stays in the CLI and the API.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

// Source is what the dashboard reads.
type Source struct {
	// Apps reports every app, by name (controller.Controller.Apps).
	Apps func(ctx context.Context) []controller.AppStatus
	// Events returns up to limit of the latest events, oldest first (log
	// order, as the store returns them); the page shows them newest
	// first. StoreEvents adapts a store.
	Events func(ctx context.Context, limit int) ([]store.Event, error)
	// Incidents is the directory of incident bundles.
	Incidents string
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

// CookieName is the cookie that carries the dashboard's credential once a
// browser has opened /?token=….
const CookieName = "lastgood_token"

// How many events and incidents the page lists.
const (
	eventLimit    = 30
	incidentLimit = 20
)

// Handler serves the dashboard: GET / and GET /incidents/{id}. When token
// is not empty, a request passes with "Authorization: Bearer <token>" or
// with the cookie that GET /?token=<token> sets; anything else gets 401.
func Handler(src Source, token string) http.Handler {
	if src.Now == nil {
		src.Now = time.Now
	}
	d := &dash{src: src}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.index)
	mux.HandleFunc("GET /incidents/{id}", d.incident)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.notFound(w, "There is no page at "+r.URL.Path+".")
	})
	return guard(token, mux)
}

type dash struct{ src Source }

// guard lets through the requests that carry the token; see Handler.
func guard(token string, h http.Handler) http.Handler {
	if token == "" {
		return headers(h)
	}
	bearer := []byte("Bearer " + token)
	// The cookie carries a value derived from the token, not the token:
	// browsers send cookies to every port of a host, so the apps lastgood
	// routes on 127.0.0.1 see it too, and it must not open the API.
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("lastgood dashboard cookie v1"))
	cookie := []byte(hex.EncodeToString(mac.Sum(nil)))
	same := func(a string, b []byte) bool { return subtle.ConstantTimeCompare([]byte(a), b) == 1 }
	return headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("token") {
			if r.Method != http.MethodGet || !same(q.Get("token"), []byte(token)) {
				unauthorized(w, "The token in the address is wrong.")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: string(cookie), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			// Drop the token from the address bar and the history.
			q.Del("token")
			to := r.URL.Path
			if len(q) > 0 {
				to += "?" + q.Encode()
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if a := r.Header.Get("Authorization"); a != "" && same(a, bearer) {
			h.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(CookieName); err == nil && same(c.Value, cookie) {
			h.ServeHTTP(w, r)
			return
		}
		unauthorized(w, "")
	}))
}

// headers sets what every dashboard answer carries: no script may run, no
// framing, no caching of a page that may need the token, no referrer.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func (d *dash) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := d.src.Now().UTC()
	v := view{Now: now}
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

func unauthorized(w http.ResponseWriter, text string) {
	render(w, http.StatusUnauthorized, messagePage, message{Title: "Token required",
		Text: strings.TrimSpace(text + " This lastgood wants its API token (LASTGOOD_TOKEN). Open /?token=… once with it: the dashboard then keeps a cookie and takes the token out of the address."),
	})
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
