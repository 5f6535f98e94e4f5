package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/server"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/tlstest"
)

// send makes one raw request, as a browser or an attacker's script
// would, and returns the status and body.
func send(t *testing.T, method, target string, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("%s %s answered with CORS headers", method, target)
	}
	return res.StatusCode, string(b)
}

// payload is an apply request whose command, when run, leaves a file
// behind: what a forged request would execute.
func payload(t *testing.T) (string, string) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "pwned")
	m := fmt.Sprintf("name: pwn\nlisten: %s\nrun:\n  command: [/bin/sh, -c, \"touch %s; exec sleep 60\"]\nrollback: {progressDeadline: 60s}\n", freeAddr(t), marker)
	b, _ := json.Marshal(controller.ApplyRequest{File: "pwn.yaml", Manifest: m})
	return string(b), marker
}

// TestForgedApplyRunsNothing reproduces the cross-site request forgery of
// issue 9: a page on another origin POSTs the JSON of an apply as
// text/plain (a "simple" request a browser sends without asking), or as a
// form, or from a DNS-rebound name; each would run a command as
// lastgood's user. Every one is refused before the controller sees it;
// the same body sent as the CLI sends it does run, which shows the
// payload was live.
func TestForgedApplyRunsNothing(t *testing.T) {
	base := serve(t, "")
	host := strings.TrimPrefix(base, "http://")
	body, marker := payload(t)
	cli := map[string]string{"Content-Type": "application/json", api.ClientHeader: "1"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range cli {
			h[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	for name, header := range map[string]map[string]string{
		"text/plain from another site":              {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://127.0.0.2:8000", "Sec-Fetch-Site": "cross-site"},
		"text/plain, no Origin":                     {"Content-Type": "text/plain"},
		"a form":                                    {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.2:8000"},
		"multipart":                                 {"Content-Type": "multipart/form-data; boundary=x"},
		"JSON without the client header":            with(map[string]string{api.ClientHeader: ""}),
		"another origin":                            with(map[string]string{"Origin": "http://127.0.0.2:8000"}),
		"a same-site page (an app on another port)": with(map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:8080"}),
		"DNS rebinding":                             with(map[string]string{"Host": "attacker.example:" + strings.Split(host, ":")[1], "Origin": "http://attacker.example:" + strings.Split(host, ":")[1]}),
	} {
		code, resp := send(t, http.MethodPost, base+"/api/v1/apply", body, header)
		var e api.Error
		json.Unmarshal([]byte(resp), &e)
		if code != http.StatusForbidden || e.Kind != "forbidden" {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	c := &api.Client{Base: base}
	ctx := context.Background()
	if apps, err := c.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("apps after forged requests: %v %v", apps, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a forged request ran its command")
	}
	// The CLI's request runs it.
	if _, err := c.Apply(ctx, mustRequest(t, body)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, err := os.Stat(marker); err != nil; _, err = os.Stat(marker) {
		if time.Now().After(deadline) {
			t.Fatal("the payload never ran, so the test proves nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Action(ctx, "pwn", "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func mustRequest(t *testing.T, body string) controller.ApplyRequest {
	var req controller.ApplyRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	return req
}

// TestForgedActionsChangeNothing: an empty form POST (what <form
// method=post> sends) to an action, a text/plain one, and a CORS preflight
// are refused, and the rollout they aim at goes on.
func TestForgedActionsChangeNothing(t *testing.T) {
	base := serve(t, "")
	c := &api.Client{Base: base}
	ctx := context.Background()
	p := manifest(t, "one", freeAddr(t), "a")
	// A first release of /bin/sleep never becomes ready: its rollout stays
	// in progress for the test (progressDeadline below is long).
	text, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(text), "progressDeadline: 1s", "progressDeadline: 60s", 1)), 0o644)
	if _, err := c.ApplyFile(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"abort", "undo", "promote", "pause"} {
		for name, header := range map[string]map[string]string{
			"empty form":  {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
			"no type":     {},
			"text/plain":  {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
			"a preflight": {"Origin": "http://127.0.0.2:8000", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-lastgood-client"},
		} {
			method := http.MethodPost
			if name == "a preflight" {
				method = http.MethodOptions
			}
			if code, resp := send(t, method, base+"/api/v1/apps/one/"+verb, "", header); code != http.StatusForbidden {
				t.Errorf("%s %s: %d %s", name, verb, code, resp)
			}
		}
	}
	st, err := c.App(ctx, "one")
	if err != nil || st.Rollout == nil || st.Rollout.Phase != store.PhaseProgressing {
		t.Fatalf("after forged actions: %+v %v", st.Rollout, err)
	}
	evs, _ := c.Events(ctx, "one", 0)
	for _, e := range evs {
		if strings.Contains(e.Type, "aborted") || strings.Contains(e.Type, "paused") {
			t.Fatalf("a forged action left %s", e.Type)
		}
	}
	if _, err := c.Action(ctx, "one", "abort", api.ActionRequest{}); err != nil {
		t.Fatalf("the CLI's abort: %v", err)
	}
	if st, _ := c.App(ctx, "one"); st.Rollout.Phase != store.PhaseAborted {
		t.Fatalf("after abort: %s", st.Rollout.Phase)
	}
}

// TestHostRuleOnEveryRoute: a request whose Host is a name lastgood was
// not given (a DNS-rebinding page) gets nothing, whatever it asks for —
// reads, the event stream, the dashboard, metrics; localhost, IPs and
// --allowed-host names pass.
func TestHostRuleOnEveryRoute(t *testing.T) {
	base := serveWith(t, server.Config{AllowedHosts: []string{"lastgood.test"}}, http.DefaultClient)
	port := base[strings.LastIndex(base, ":")+1:]
	for _, path := range []string{"/api/v1/apps", "/api/v1/events?follow=1", "/", "/metrics", "/healthz", "/incidents/x", "/api/v1/whoami"} {
		for host, want := range map[string]int{"rebound.example:" + port: 403, "lastgood.test.example:" + port: 403, "localhost:" + port: 0, "lastgood.test:" + port: 0} {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			req.Host = host
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			res.Body.Close()
			cancel()
			if want == 403 && res.StatusCode != 403 || want == 0 && res.StatusCode == 403 {
				t.Errorf("GET %s with Host %s: %d", path, host, res.StatusCode)
			}
		}
	}
}

const (
	viewerSecret   = "viewer-secret-0123456789"
	deployerSecret = "deployer-secret-0123456789"
)

func teamServer(t *testing.T, metricsAuth string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("# the team\nvera viewer "+viewerSecret+"\ndan deployer "+deployerSecret+"\n"), 0o600)
	toks, warnings, err := access.LoadTokens(file)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("tokens: %v %v", warnings, err)
	}
	return serveWith(t, server.Config{Tokens: toks, Token: "env-admin-secret", MetricsAuth: metricsAuth}, http.DefaultClient)
}

// TestRolesAndAudit: a viewer reads but cannot apply (403, nothing
// created); a deployer applies and aborts, and the event log says it was
// dan; LASTGOOD_TOKEN stays an admin token.
func TestRolesAndAudit(t *testing.T) {
	base := teamServer(t, "")
	ctx := context.Background()
	viewer := &api.Client{Base: base, Token: viewerSecret}
	deployer := &api.Client{Base: base, Token: deployerSecret}
	if w, err := viewer.Whoami(ctx); err != nil || w != (api.Whoami{Name: "vera", Role: "viewer"}) {
		t.Fatalf("whoami: %+v %v", w, err)
	}
	if w, err := (&api.Client{Base: base, Token: "env-admin-secret"}).Whoami(ctx); err != nil || w != (api.Whoami{Name: access.EnvTokenName, Role: "admin"}) {
		t.Fatalf("whoami of LASTGOOD_TOKEN: %+v %v", w, err)
	}
	if _, err := (&api.Client{Base: base}).Apps(ctx); !isStatus(err, 401) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := viewer.Apps(ctx); err != nil {
		t.Fatalf("viewer reads: %v", err)
	}
	p := manifest(t, "one", freeAddr(t), "a")
	text, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(text), "progressDeadline: 1s", "progressDeadline: 60s", 1)), 0o644)
	_, err := viewer.ApplyFile(ctx, p)
	if !isStatus(err, 403) || !strings.Contains(err.Error(), "token vera has the viewer role") {
		t.Fatalf("viewer applies: %v", err)
	}
	if apps, _ := deployer.Apps(ctx); len(apps) != 0 {
		t.Fatalf("the viewer's apply created %v", apps)
	}
	if _, err := deployer.ApplyFile(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.Action(ctx, "one", "abort", api.ActionRequest{}); !isStatus(err, 403) {
		t.Fatalf("viewer aborts: %v", err)
	}
	if _, err := deployer.Action(ctx, "one", "abort", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	evs, err := viewer.Events(ctx, "one", 0)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]string{}
	for _, e := range evs {
		byType[e.Type] = e.Actor
	}
	for _, typ := range []string{"app.created", "revision.created", "rollout.started", "rollout.aborted"} {
		if byType[typ] != "dan" {
			t.Errorf("%s was by %q, want dan (events %v)", typ, byType[typ], byType)
		}
	}
	if a, err := viewer.Audit(ctx); err != nil || !a.OK() {
		t.Fatalf("audit: %+v %v", a, err)
	}
}

func isStatus(err error, code int) bool {
	se, ok := errors.AsType[*api.StatusError](err)
	return ok && se.Code == code
}

// TestMetricsCanNeedAToken: with --metrics-auth token, /metrics wants a
// viewer token; by default on loopback it stays open.
func TestMetricsCanNeedAToken(t *testing.T) {
	for auth, open := range map[string]bool{"token": false, "": true, "open": true} {
		base := teamServer(t, auth)
		code, _ := send(t, http.MethodGet, base+"/metrics", "", nil)
		if open != (code == 200) || !open && code != 401 {
			t.Errorf("--metrics-auth %q without a token: %d", auth, code)
		}
		code, body := send(t, http.MethodGet, base+"/metrics", "", map[string]string{"Authorization": "Bearer " + viewerSecret})
		if code != 200 || strings.Contains(body, "token") {
			t.Errorf("--metrics-auth %q with a viewer token: %d", auth, code)
		}
	}
}

// TestTLS: lastgood serves the API and the dashboard over HTTPS with the
// certificate it is given; the client trusts it through --ca-cert's
// HTTPClient and nothing else; the dashboard's session cookie is Secure.
func TestTLS(t *testing.T) {
	files, err := tlstest.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hc, err := api.HTTPClient(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	base := serveWith(t, server.Config{Token: "s3cret", TLSCert: files.Cert, TLSKey: files.Key}, hc)
	if !strings.HasPrefix(base, "https://") {
		t.Fatal(base)
	}
	ctx := context.Background()
	if _, err := (&api.Client{Base: base, Token: "s3cret", HTTP: hc}).Apps(ctx); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if _, err := (&api.Client{Base: base, Token: "s3cret"}).Apps(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v", err)
	}
	if _, err := (&api.Client{Base: "http" + strings.TrimPrefix(base, "https"), Token: "s3cret"}).Apps(ctx); err == nil {
		t.Fatal("plain HTTP was answered")
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noRedirect.Get(base + "/?token=" + url.QueryEscape("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cs := res.Cookies(); res.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("sign-in over TLS: %d %+v", res.StatusCode, cs)
	}
	if _, err := api.HTTPClient(files.Key); err == nil {
		t.Fatal("a key file was taken for a CA certificate")
	}
}
