package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

var t0 = time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC)

// canaryApp is an app in the middle of a canary whose errors check fails.
func canaryApp() controller.AppStatus {
	return controller.AppStatus{
		App: store.App{Name: "shop", Listen: "127.0.0.1:8080", Stable: 3, Latest: 4},
		Rollout: &controller.RolloutStatus{
			Rollout: store.Rollout{ID: 7, App: "shop", From: 3, To: 4, Strategy: "canary", Phase: store.PhaseProgressing, Started: t0},
			Detail:  strategy.State{Kind: strategy.Canary, From: 3, To: 4, Phase: strategy.Progressing, Step: 1, Weight: 20},
			Steps:   3,
			Checks: []analysis.Result{
				{Result: judge.Result{Check: "errors", Verdict: judge.Fail, Reason: "error rate 8.1% vs 0.2% <script>alert(1)</script>"}, At: t0},
				{Result: judge.Result{Check: "latency", Verdict: judge.Pass, Reason: "p99 within 5%"}, At: t0},
			},
		},
		Traffic: []controller.Route{{Revision: 3, Weight: 80, Backends: []string{"a", "b"}}, {Revision: 4, Weight: 20, Backends: []string{"c"}}},
		Replicas: []controller.Replica{
			{ID: "shop-3-1", Revision: 3, State: "running", Ready: true},
			{ID: "shop-4-1", Revision: 4, State: "running", Ready: true, Restarts: 2},
		},
	}
}

func source(apps ...controller.AppStatus) Source {
	return Source{
		Apps: func(context.Context) []controller.AppStatus { return apps },
		Events: func(_ context.Context, limit int) ([]store.Event, error) {
			return []store.Event{
				{Seq: 1, Time: t0, App: "shop", Type: "rollout.started", Message: "first message"},
				{Seq: 2, Time: t0.Add(time.Second), App: "shop", Type: "traffic.weight", Message: "second message"},
			}, nil
		},
		Incidents: filepath.Join(os.TempDir(), "lastgood-dashboard-test-none"),
		Now:       func() time.Time { return t0.Add(time.Minute) },
	}
}

// serveDash is the dashboard behind its gate, as api.Server serves it,
// with token (when not "") as the only, admin, token. httptest's requests
// carry Host example.com, which the gate is told to allow.
func serveDash(t *testing.T, src Source, token string) http.Handler {
	t.Helper()
	toks := &access.Tokens{}
	if token != "" {
		if err := toks.Add(access.EnvTokenName, access.Admin, token); err != nil {
			t.Fatal(err)
		}
	}
	return serveDashTokens(t, src, toks)
}

func serveDashTokens(t *testing.T, src Source, toks *access.Tokens) http.Handler {
	t.Helper()
	g, err := access.New(access.Config{Tokens: toks, AllowedHosts: []string{"example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return g.Wrap(Handler(src, g), Deny)
}

func do(t *testing.T, h http.Handler, req *http.Request) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := w.Result()
	return res, w.Body.String()
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	return do(t, h, httptest.NewRequest(http.MethodGet, target, nil))
}

func TestIndexShowsAnApp(t *testing.T) {
	res, body := get(t, serveDash(t, source(canaryApp()), ""), "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="2">`,
		"<h3>shop</h3>", "Stable revision <b>3</b>",
		"Rollout <b>#7</b>", "step 2 of 3", "progressing",
		`style="width: 80%"`, `style="width: 20%"`, "r3 80%", "r4 20%",
		`<span class="v fail">fail</span>`, `<span class="v pass">pass</span>`, "error rate 8.1% vs 0.2%",
		"shop-4-1", "<td>2</td>",
		"second message", "first message",
		"No incidents",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the reason is not escaped:\n%s", body)
	}
	if strings.Index(body, "second message") > strings.Index(body, "first message") {
		t.Error("events are not newest first")
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestRolledBackRolloutShowsWhy(t *testing.T) {
	a := canaryApp()
	a.Rollout.Phase = store.PhaseRolledBack
	a.Rollout.Detail.Phase = strategy.RolledBack
	a.Rollout.Detail.Trigger = strategy.TriggerAnalysis
	a.Rollout.Detail.Reason = "check errors failed"
	a.Traffic = []controller.Route{{Revision: 3, Weight: 100}, {Revision: 4, Weight: 0}}
	_, body := get(t, serveDash(t, source(a), ""), "/")
	for _, want := range []string{`class="phase failed">rolled-back`, "(" + strategy.TriggerAnalysis + "): check errors failed", `style="width: 100%"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestEmptyStates(t *testing.T) {
	src := source()
	src.Events = func(context.Context, int) ([]store.Event, error) { return nil, nil }
	res, body := get(t, serveDash(t, src, ""), "/")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{"No apps yet: <code>lastgood apply -f app.yaml</code>", "No incidents", "No events yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestOnlyTheRootIsTheIndex(t *testing.T) {
	h := serveDash(t, source(), "")
	for _, p := range []string{"/nothing", "/incidents/", "/index.html"} {
		if res, _ := get(t, h, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
}

func TestToken(t *testing.T) {
	h := serveDash(t, source(canaryApp()), "s3cret")
	if res, body := get(t, h, "/"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "/?token=") {
		t.Fatalf("no token: %d\n%s", res.StatusCode, body)
	}
	if res, _ := get(t, h, "/?token=wrong"); res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	if res, _ := get(t, h, "/incidents/x"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("incident without token: %d", res.StatusCode)
	}

	res, _ := get(t, h, "/?token=s3cret")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("right token: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	cs := res.Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	c := cs[0]
	if c.Name != access.CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
	if c.Value == "s3cret" || strings.Contains(c.Value, "s3cret") {
		t.Fatal("the cookie carries the API token itself")
	}

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	if res, body := do(t, h, req); res.StatusCode != 200 || !strings.Contains(body, "<h3>shop</h3>") {
		t.Fatalf("with the cookie: %d", res.StatusCode)
	}
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: access.CookieName, Value: "s3cret"})
	if res, _ := do(t, h, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the raw token as cookie: %d, want 401", res.StatusCode)
	}

	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if res, _ := do(t, h, req); res.StatusCode != 200 {
		t.Fatalf("bearer: %d", res.StatusCode)
	}
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer nope")
	if res, _ := do(t, h, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: %d", res.StatusCode)
	}
	// A cookie made for another token does not open this dashboard.
	res, _ = get(t, serveDash(t, source(), "other"), "/?token=other")
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(res.Cookies()[0])
	if res, _ := do(t, h, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another token's cookie: %d", res.StatusCode)
	}
}

// writeIncident writes a bundle as the recorder does: incident.json and
// report.html.
func writeIncident(t *testing.T, dir string, inc *incident.Incident) {
	t.Helper()
	folder := filepath.Join(dir, inc.ID)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(inc)
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := incident.HTML(&page, inc); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(folder, incident.FileName), b, 0o644)
	os.WriteFile(filepath.Join(folder, incident.ReportHTML), page.Bytes(), 0o644)
}

func sampleIncident() *incident.Incident {
	detect, back := int64(1500), int64(42)
	at := incident.Millis{Time: t0}
	return &incident.Incident{
		Schema: incident.SchemaVersion, ID: incident.ID("shop", 7), App: "shop", Rollout: 7, From: 3, To: 4,
		Strategy: "canary", Kind: incident.KindRolledBack, Trigger: strategy.TriggerAnalysis,
		Reason: "check errors failed", Started: at, Decided: at, Written: at, Complete: true,
		Figures: incident.Figures{TimeToDetectMs: &detect, TimeToRollbackMs: &back},
	}
}

func TestIncidents(t *testing.T) {
	dir := t.TempDir()
	writeIncident(t, dir, sampleIncident())
	// A secret beside the incidents that no id may reach.
	os.WriteFile(filepath.Join(dir, "secret.html"), []byte("TOP-SECRET-CONTENT"), 0o644)
	src := source(canaryApp())
	src.Incidents = dir
	h := serveDash(t, src, "")

	_, body := get(t, h, "/")
	for _, want := range []string{`<a href="/incidents/shop-7">shop-7</a>`, "<td>3 → 4</td>", "rolled-back", "1.50s", "42ms", strategy.TriggerAnalysis} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// A bundle renamed from its old id (the global rollout id) is found by it.
	old := sampleIncident()
	old.ID, old.Aliases, old.Rollout = incident.ID("shop", 2), []string{"shop-9"}, 9
	writeIncident(t, dir, old)
	if res, _ := get(t, h, "/incidents/shop-9"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/incidents/shop-2" {
		t.Errorf("GET /incidents/shop-9 (an alias of shop-2): %d to %q", res.StatusCode, res.Header.Get("Location"))
	}

	res, report := get(t, h, "/incidents/shop-7")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("report: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	want, _ := os.ReadFile(filepath.Join(dir, "shop-7", incident.ReportHTML))
	if report != string(want) || !strings.Contains(report, "Incident shop-7") {
		t.Fatalf("served report differs from report.html:\n%.300s", report)
	}

	for _, p := range []string{"/incidents/nope-1", "/incidents/..", "/incidents/..%2fsecret.html", "/incidents/..%2F..%2Fetc%2Fpasswd", "/incidents/%2e%2e", "/incidents/shop-7%2f..%2f..%2fsecret.html"} {
		res, body := get(t, h, p)
		// ServeMux redirects an unclean path ("/incidents/.." → "/").
		redirected := res.StatusCode == http.StatusTemporaryRedirect && res.Header.Get("Location") == "/"
		if res.StatusCode != http.StatusNotFound && !redirected || strings.Contains(body, "TOP-SECRET-CONTENT") {
			t.Errorf("GET %s: %d\n%s", p, res.StatusCode, body)
		}
	}

	// A bundle whose report.html is missing is rendered from incident.json.
	os.Remove(filepath.Join(dir, "shop-7", incident.ReportHTML))
	if res, body := get(t, h, "/incidents/shop-7"); res.StatusCode != 200 || !strings.Contains(body, "Incident shop-7") {
		t.Fatalf("rendered report: %d", res.StatusCode)
	}
}

func TestStoreEventsReturnsTheLatest(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	events := StoreEvents(st)
	if evs, err := events(ctx, 30); err != nil || len(evs) != 0 {
		t.Fatalf("empty log: %v, %v", evs, err)
	}
	err = st.Update(ctx, func(tx *store.Tx) error {
		for i := range 40 {
			if _, err := tx.AppendEvent(store.Event{Type: "test", Message: "m" + string(rune('0'+i%10))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := events(ctx, 30)
	if err != nil || len(evs) != 30 || evs[0].Seq != 11 || evs[29].Seq != 40 {
		t.Fatalf("got %d events (%v), first %d last %d", len(evs), err, evs[0].Seq, evs[len(evs)-1].Seq)
	}
}

// acts records the actions the page's buttons ran.
type acts struct {
	calls []string
	err   error
}

func (a *acts) act(_ context.Context, app, verb, by string) error {
	a.calls = append(a.calls, app+" "+verb+" by "+by)
	return a.err
}

var csrfInput = regexp.MustCompile(`<input type="hidden" name="csrf" value="([0-9a-f]+)">`)

// signIn opens the page with secret and returns its session cookie and
// the page.
func signIn(t *testing.T, h http.Handler, secret string) (*http.Cookie, string) {
	t.Helper()
	res, _ := get(t, h, "/?token="+secret)
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 {
		t.Fatalf("sign in: %d %v", res.StatusCode, res.Cookies())
	}
	c := res.Cookies()[0]
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	res, body := do(t, h, req)
	if res.StatusCode != 200 {
		t.Fatalf("page: %d", res.StatusCode)
	}
	return c, body
}

func team(t *testing.T) *access.Tokens {
	toks := &access.Tokens{}
	toks.Add("vera", access.Viewer, "viewer-secret-0123456789")
	toks.Add("dan", access.Deployer, "deployer-secret-0123456789")
	return toks
}

func post(h http.Handler, path string, c *http.Cookie, csrf, origin string) (*http.Response, string) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if c != nil {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result(), w.Body.String()
}

func TestButtonsAreForDeployers(t *testing.T) {
	a := &acts{}
	src := source(canaryApp())
	src.Act = a.act
	h := serveDashTokens(t, src, team(t))

	_, page := signIn(t, h, "viewer-secret-0123456789")
	if strings.Contains(page, "<form") || !strings.Contains(page, "Signed in as <b>vera</b> (viewer): read-only.") {
		t.Fatalf("the viewer's page:\n%s", page)
	}
	dan, page := signIn(t, h, "deployer-secret-0123456789")
	for _, want := range []string{
		`<form method="post" action="/apps/shop/promote">`,
		`<form method="post" action="/apps/shop/abort">`, "Abort: back to revision 3",
		"Signed in as <b>dan</b> (deployer).",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the deployer's page lacks %q", want)
		}
	}
	if strings.Contains(page, "/apps/shop/undo") {
		t.Error("undo is offered while a rollout runs")
	}
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	res, _ := post(h, "/apps/shop/abort", dan, m[1], "http://example.com")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/#app-shop" {
		t.Fatalf("abort: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if len(a.calls) != 1 || a.calls[0] != "shop abort by dan" {
		t.Fatalf("calls %v", a.calls)
	}
	// Refused: a foreign origin, a missing token, an unknown action. None acts.
	for _, tc := range []struct {
		path, csrf, origin string
		want               int
	}{
		{"/apps/shop/abort", m[1], "http://127.0.0.2:9000", 403},
		{"/apps/shop/abort", "", "http://example.com", 403},
		{"/apps/shop/explode", m[1], "http://example.com", 404},
	} {
		if res, body := post(h, tc.path, dan, tc.csrf, tc.origin); res.StatusCode != tc.want || !strings.Contains(body, "<h1>") {
			t.Errorf("POST %s from %s: %d, want %d", tc.path, tc.origin, res.StatusCode, tc.want)
		}
	}
	if len(a.calls) != 1 {
		t.Fatalf("a refused form acted: %v", a.calls)
	}
	// A refusal of the controller is shown, with its status.
	a.err = fmt.Errorf("%w: shop has no rollout in progress to abort", controller.ErrConflict)
	if res, body := post(h, "/apps/shop/abort", dan, m[1], "http://example.com"); res.StatusCode != http.StatusConflict || !strings.Contains(body, "no rollout in progress") {
		t.Fatalf("a conflict: %d\n%s", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
}

func TestOpenDashboardHasButtonsAndASession(t *testing.T) {
	a := &acts{}
	app := canaryApp()
	app.Rollout.Phase, app.Rollout.Detail.Phase = store.PhasePromoted, strategy.Promoted
	src := source(app)
	src.Act = a.act
	h := serveDash(t, src, "")
	res, page := get(t, h, "/")
	m := csrfInput.FindStringSubmatch(page)
	if res.StatusCode != 200 || len(res.Cookies()) != 1 || m == nil || !strings.Contains(page, `action="/apps/shop/undo"`) {
		t.Fatalf("open page: %d %v\n%s", res.StatusCode, res.Cookies(), page)
	}
	if strings.Contains(page, "/apps/shop/abort") {
		t.Error("abort is offered with no rollout in progress")
	}
	if res, _ := post(h, "/apps/shop/undo", res.Cookies()[0], m[1], "http://example.com"); res.StatusCode != http.StatusSeeOther || len(a.calls) != 1 || a.calls[0] != "shop undo by anonymous" {
		t.Fatalf("undo: %d %v", res.StatusCode, a.calls)
	}
	// Without its session cookie the same form is refused.
	if res, _ := post(h, "/apps/shop/undo", nil, m[1], "http://example.com"); res.StatusCode != http.StatusForbidden || len(a.calls) != 1 {
		t.Fatalf("undo without the cookie: %d %v", res.StatusCode, a.calls)
	}
}
