package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/chromiumtest"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

const canaryPause = "canary: {steps: [{setWeight: 50}, {pause: {}}]}"

// patientManifest is a.manifest with time to spare: on a busy machine the
// replicas of the browser tests may take long to get ready, and a missed
// progress deadline would roll back what the test means to click on.
func (a *app) patientManifest(t *testing.T, strategy, env string) string {
	t.Helper()
	p := a.manifest(t, 1, strategy, env)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("progressDeadline: 20s", "progressDeadline: 90s", "window: 1m", "window: 10m",
		"readiness: {http: /healthz, period: 100ms, failureThreshold: 2}", "readiness: {http: /healthz, period: 1s, timeout: 1s, failureThreshold: 20}").Replace(string(b))
	if !strings.Contains(text, "timeout: 1s") {
		t.Fatalf("the manifest changed shape:\n%s", text)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPaused waits until app's latest rollout waits for promote.
func (in *instance) waitPaused(t *testing.T, app string) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, patience, app+"'s canary to pause", func() bool {
		st, _ = in.c.App(context.Background(), app)
		return st.Rollout != nil && st.Rollout.Detail.Phase == strategy.Paused
	})
	return st
}

// applyPatiently is applyWait with patience.
func (in *instance) applyPatiently(t *testing.T, file string) controller.AppStatus {
	t.Helper()
	res, err := in.c.ApplyFile(context.Background(), file)
	if err != nil || res.Rollout == 0 {
		t.Fatalf("apply %s: %v %s", file, err, res.Message)
	}
	return in.waitEnded(t, res.App, res.Rollout)
}

// waitEnded waits, with patience, until rollout id of app has ended.
func (in *instance) waitEnded(t *testing.T, app string, id int64) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, patience, fmt.Sprintf("rollout #%d to end", id), func() bool {
		st, _ = in.c.App(context.Background(), app)
		return st.Rollout != nil && st.Rollout.ID == id && strategy.Phase(st.Rollout.Phase).Final()
	})
	return st
}

// actorOf returns who the latest event of type typ on app was by.
func (in *instance) actorOf(t *testing.T, app, typ string) string {
	t.Helper()
	evs, err := in.c.Events(context.Background(), app, 0)
	if err != nil {
		t.Fatal(err)
	}
	actor := "<no " + typ + " event>"
	for _, e := range evs {
		if e.Type == typ {
			actor = e.Actor
		}
	}
	return actor
}

// patience bounds the waits of the browser tests: generous, for a busy
// two-core machine running the race detector.
const patience = 90 * time.Second

// clickAction clicks an app's action button on the page and waits for
// the answer: the dashboard again (the action was done) or a refusal,
// which fails the test with what it said.
func clickAction(t *testing.T, page *chromiumtest.Page, app, verb string) {
	t.Helper()
	page.Click(`form[action="/apps/` + app + `/` + verb + `"] button`)
	page.WaitFor("the answer to "+verb, `location.hash === "#app-`+app+`" && document.readyState === "complete" || document.title !== "lastgood"`, patience)
	var title string
	page.Eval("document.title", &title)
	if title != "lastgood" {
		var text string
		page.Eval("document.body.textContent", &text)
		t.Fatalf("%s was refused: %s", verb, text)
	}
}

// TestDeployerClicksPromoteUndoAbortInChromium: a deployer signs in to
// the dashboard in headless Chromium and, with the mouse, promotes a
// paused canary, undoes the release, and aborts the next one; each click
// changes the rollout and is audited by the deployer's name. A viewer
// signed in to the same page sees no button.
func TestDeployerClicksPromoteUndoAbortInChromium(t *testing.T) {
	toks := &access.Tokens{}
	toks.Add("vera", access.Viewer, "viewer-secret-0123456789")
	toks.Add("dan", access.Deployer, "deployer-secret-0123456789")
	in := startWith(t, Config{DataDir: t.TempDir(), Tokens: toks})
	in.c.Token = "deployer-secret-0123456789"
	a := newApp(t, "web")
	in.applyPatiently(t, a.patientManifest(t, blueGreen, ""))
	if _, err := in.c.ApplyFile(context.Background(), a.patientManifest(t, canaryPause, "V: two")); err != nil {
		t.Fatal(err)
	}
	st := in.waitPaused(t, "web")

	page := chromiumtest.Start(t).NewPage()
	page.Navigate(in.c.Base + "/?token=deployer-secret-0123456789")
	if body := page.HTML(); !strings.Contains(body, "Signed in as <b>dan</b> (deployer)") || strings.Contains(body, "deployer-secret") {
		t.Fatalf("signed-in page:\n%s", body)
	}
	if cs := page.Cookies(in.c.Base); len(cs) != 1 || cs[0].Name != access.CookieName || !cs[0].HTTPOnly || cs[0].SameSite != "Strict" {
		t.Fatalf("cookies %+v", cs)
	}

	clickAction(t, page, "web", "promote")
	st = in.waitEnded(t, "web", st.Rollout.ID)
	if st.Rollout.Phase != store.PhasePromoted || st.Stable != 2 {
		t.Fatalf("after the promote click: %s (%s: %s), stable %d", st.Rollout.Phase, st.Rollout.Trigger, st.Rollout.Reason, st.Stable)
	}
	if by := in.actorOf(t, "web", "rollout.promoted"); by != "dan" {
		t.Errorf("promoted by %q", by)
	}

	page.Navigate(in.c.Base + "/")
	clickAction(t, page, "web", "undo")
	waitFor(t, patience, "the undo", func() bool {
		st, _ = in.c.App(context.Background(), "web")
		return st.Rollout != nil && st.Rollout.Strategy == strategy.Undo && st.Rollout.Phase == store.PhasePromoted
	})
	if st.Stable != 3 || in.actorOf(t, "web", "revision.created") != "dan" {
		t.Fatalf("after the undo click: stable %d, revision by %q", st.Stable, in.actorOf(t, "web", "revision.created"))
	}
	if _, body := get(t, a.listen); strings.Contains(body, "two") {
		t.Fatalf("after undo the app says %q", body)
	}

	if _, err := in.c.ApplyFile(context.Background(), a.patientManifest(t, canaryPause, "V: three")); err != nil {
		t.Fatal(err)
	}
	st = in.waitPaused(t, "web")
	page.Navigate(in.c.Base + "/")
	clickAction(t, page, "web", "abort")
	st = in.waitEnded(t, "web", st.Rollout.ID)
	if st.Rollout.Phase != store.PhaseAborted || in.actorOf(t, "web", "rollout.aborted") != "dan" {
		t.Fatalf("after the abort click: %s by %q", st.Rollout.Phase, in.actorOf(t, "web", "rollout.aborted"))
	}

	page.Navigate(in.c.Base + "/?token=viewer-secret-0123456789")
	if body := page.HTML(); !strings.Contains(body, "Signed in as <b>vera</b> (viewer): read-only.") || strings.Contains(body, "<form") {
		t.Fatalf("the viewer's page:\n%s", body)
	}
}

// recorder is a server on 127.0.0.1 that only counts what reaches it: the
// proof that Chromium does send the cross-site forms to 127.0.0.1, so a
// lastgood that changed nothing refused them.
type recorder struct {
	mu      sync.Mutex
	seen    []string
	applies []controller.ApplyRequest // the apply bodies that decode as lastgood's API would
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.seen = append(rc.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
	var req controller.ApplyRequest
	if r.URL.Path == "/api/v1/apply" && json.Unmarshal(b, &req) == nil {
		rc.applies = append(rc.applies, req)
	}
	rc.mu.Unlock()
	io.WriteString(w, "recorded")
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// serveOn serves h on addr until the test ends and returns its address.
func serveOn(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// attackPage is a page on another origin that, once loaded, submits forms
// to lastgood's API and dashboard — an apply as text/plain JSON (the
// classic trick: the field's name holds the JSON), empty actions, a
// dashboard form with a guessed CSRF token — and a no-cors fetch; the
// same forms go to the recorder. It counts the frames that loaded an
// answer.
func attackPage(api, rec string, apply []byte) string {
	// text/plain sends NAME=VALUE: {"file":…,"artifacts":null,"x":"="}
	name, value := string(apply[:len(apply)-1])+`,"x":"`, `"}`
	forms := []struct{ action, enctype, fields string }{
		{"/api/v1/apply", "text/plain", `<input name="` + html.EscapeString(name) + `" value="` + html.EscapeString(value) + `">`},
		{"/api/v1/apps/web/abort", "application/x-www-form-urlencoded", ""},
		{"/api/v1/apps/web/promote", "text/plain", `<input name="{}" value="">`},
		{"/apps/web/abort", "application/x-www-form-urlencoded", `<input name="csrf" value="0123456789abcdef">`},
		{"/apps/web/promote", "application/x-www-form-urlencoded", ""},
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><body><h1>Free prizes</h1>\n")
	n := 0
	for _, host := range []string{api, rec} {
		for _, f := range forms {
			n++
			fmt.Fprintf(&b, `<iframe name="f%d"></iframe><form target="f%d" method="post" enctype="%s" action="http://%s%s">%s</form>`+"\n",
				n, n, f.enctype, host, f.action, f.fields)
		}
	}
	payload, _ := json.Marshal(string(apply))
	fmt.Fprintf(&b, `<script>
window.loaded = 0;
window.addEventListener("load", async () => {
  for (const f of document.querySelectorAll("iframe")) f.addEventListener("load", () => { window.loaded++; });
  for (const f of document.forms) f.submit();
  await fetch("http://%s/api/v1/apply", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: %s}).catch(() => {});
  await fetch("http://%s/api/v1/apply", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: %s}).catch(() => {});
  window.fetched = true;
});
</script></body></html>`, api, payload, rec, payload)
	return b.String()
}

// TestCrossSitePageChangesNothingInChromium: lastgood without a token (the
// default), a user with the dashboard open in Chromium, and a page served
// from another loopback origin (127.0.0.2) that auto-submits forms and
// fetches to lastgood's API and dashboard. The same requests reach a
// recorder on 127.0.0.1, so Chromium sent them; lastgood refused every
// one: no app created, no command run, the paused canary untouched. And a
// DNS-rebound name (mapped to 127.0.0.1 by the browser's resolver) gets
// lastgood's refusal, not its dashboard.
func TestCrossSitePageChangesNothingInChromium(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "web")
	in.applyPatiently(t, a.patientManifest(t, blueGreen, ""))
	if _, err := in.c.ApplyFile(context.Background(), a.patientManifest(t, canaryPause, "V: two")); err != nil {
		t.Fatal(err)
	}
	before := in.waitPaused(t, "web")
	apiAddr := strings.TrimPrefix(in.c.Base, "http://")

	marker := filepath.Join(t.TempDir(), "pwned")
	m := fmt.Sprintf("name: pwn\nlisten: %s\nrun:\n  command: [/bin/sh, -c, \"touch %s; exec sleep 60\"]\n", freeAddr(t), marker)
	apply, _ := json.Marshal(controller.ApplyRequest{File: "pwn.yaml", Manifest: m})
	rec := &recorder{}
	recAddr := serveOn(t, "127.0.0.1:0", rec)
	evil := serveOn(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, attackPage(apiAddr, recAddr, apply))
	}))

	port := apiAddr[strings.LastIndex(apiAddr, ":")+1:]
	browser := chromiumtest.Start(t, "--host-resolver-rules=MAP rebound.test 127.0.0.1")
	page := browser.NewPage()
	page.Navigate(in.c.Base + "/") // the user's dashboard: an anonymous session cookie
	if !strings.Contains(page.HTML(), `action="/apps/web/abort"`) {
		t.Fatalf("the dashboard offers no abort:\n%s", page.HTML())
	}
	page.Navigate("http://" + evil + "/")
	page.WaitFor("the attack to finish", `window.fetched === true && window.loaded >= 10`, patience)
	waitFor(t, 10*time.Second, "the recorder to see every request", func() bool { return rec.count() >= 6 })
	rec.mu.Lock()
	live := len(rec.applies) == 2 && rec.applies[0].Manifest == m && rec.applies[1].Manifest == m
	rec.mu.Unlock()
	if !live {
		t.Fatalf("the attack's apply bodies are not valid apply requests, so the test proves nothing: %v", rec.seen)
	}

	after, err := in.c.App(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if after.Rollout.ID != before.Rollout.ID || after.Rollout.Detail.Phase != strategy.Paused || after.Stable != before.Stable {
		t.Fatalf("the attack changed the rollout: #%d %s, stable %d", after.Rollout.ID, after.Rollout.Detail.Phase, after.Stable)
	}
	if list, _ := in.c.Apps(context.Background()); len(list) != 1 {
		t.Fatalf("apps after the attack: %d", len(list))
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the attack ran its command")
	}
	evs, _ := in.c.Events(context.Background(), "web", 0)
	for _, e := range evs {
		if e.Actor != "" && e.Type != "app.created" && e.Type != "revision.created" && e.Type != "rollout.started" {
			t.Errorf("an event by %q after the attack: %s %s", e.Actor, e.Type, e.Message)
		}
	}

	page.Navigate("http://rebound.test:" + port + "/")
	if body := page.HTML(); strings.Contains(body, "app-web") || !strings.Contains(body, "is not allowed") {
		t.Fatalf("the rebound name got:\n%s", body)
	}
}
