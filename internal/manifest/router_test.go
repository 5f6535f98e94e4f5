package manifest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRouterSection(t *testing.T) {
	if app := mustParse(t, base); app.Router != nil || strings.Contains(string(app.Canonical()), "router") {
		t.Errorf("without a router section: %+v, canonical %s; want none, so that older revisions keep their digest", app.Router, app.Canonical())
	}
	app := mustParse(t, doc("router: {}"))
	want := Router{
		ResponseTimeout: Duration(30 * time.Second), MaxConnections: 4096, HeaderTimeout: Duration(10 * time.Second),
		BodyTimeout: Duration(5 * time.Minute), BodyIdleTimeout: Duration(30 * time.Second), IdleTimeout: Duration(2 * time.Minute),
	}
	if app.Router == nil || *app.Router != want {
		t.Fatalf("router: {} = %+v, want the defaults %+v", app.Router, want)
	}
	canon := string(app.Canonical())
	if !strings.Contains(canon, `"router":{"responseTimeout":"30s","maxConnections":4096,"headerTimeout":"10s","bodyTimeout":"5m0s","bodyIdleTimeout":"30s","idleTimeout":"2m0s"}`) {
		t.Errorf("canonical form %s does not spell out the router defaults", canon)
	}
	again, err := FromJSON(app.Canonical())
	if err != nil || *again.Router != want {
		t.Errorf("FromJSON(Canonical) = %+v, %v", again.Router, err)
	}
	app = mustParse(t, doc("router:", "  responseTimeout: 0s", "  maxConnections: 10", "  idleTimeout: 5s"))
	if r := app.Router; r.ResponseTimeout != 0 || r.MaxConnections != 10 || r.IdleTimeout.D() != 5*time.Second || r.BodyTimeout.D() != 5*time.Minute {
		t.Errorf("router = %+v: a written 0s must stay 0 (no timeout), unwritten fields defaulted", r)
	}
	old, _ := Parse("app.yaml", []byte(doc("router: {responseTimeout: 30s}")))
	changes := Diff(old, app)
	if !slices.ContainsFunc(changes, func(c Change) bool { return c.Field == "router.responseTimeout" && c.Old == "30s" && c.New == "0s" }) {
		t.Errorf("Diff = %+v, want router.responseTimeout 30s → 0s", changes)
	}
}

func TestRouterSectionErrors(t *testing.T) {
	got := problems(t, doc("router:", "  responseTimeout: 5s", "  maxConnection: 3"))
	want := []string{
		`app.yaml:7: router.maxConnection: unknown field; did you mean "maxConnections"?`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
	got = problems(t, doc("router:", "  responseTimeout: -1s", "  maxConnections: 0", "  headerTimeout: 0s",
		"  bodyTimeout: -5s", "  bodyIdleTimeout: 0s", "  idleTimeout: 0s"))
	want = []string{
		"app.yaml:6: router.responseTimeout: must not be negative, got -1s",
		"app.yaml:7: router.maxConnections: must be between 1 and 1000000, got 0",
		"app.yaml:8: router.headerTimeout: must be a duration greater than 0, got 0s",
		"app.yaml:9: router.bodyTimeout: must be a duration greater than 0, got -5s",
		"app.yaml:10: router.bodyIdleTimeout: must be a duration greater than 0, got 0s",
		"app.yaml:11: router.idleTimeout: must be a duration greater than 0, got 0s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
	if got := problems(t, doc("router: {responseTimeout: soon}")); len(got) != 1 || !strings.Contains(got[0], "app.yaml:5: router.responseTimeout: ") {
		t.Errorf("problems %q, want one naming router.responseTimeout at line 5", got)
	}
}
