package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/strategy"
)

// fetch GETs url and returns the status, the content type and the body.
func fetch(t *testing.T, url string) (int, string, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

func TestDashboardShowsAppsAndIncidents(t *testing.T) {
	in := start(t, t.TempDir())
	code, ctype, page := fetch(t, in.c.Base+"/")
	if code != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(page, "No apps yet") {
		t.Fatalf("empty dashboard: %d %q\n%s", code, ctype, page)
	}

	a := newApp(t, "dash")
	in.applyWait(t, a.manifest(t, 1, blueGreen, ""))
	code, _, page = fetch(t, in.c.Base+"/")
	if code != 200 || !strings.Contains(page, "<h3>dash</h3>") || !strings.Contains(page, "Stable revision <b>1</b>") {
		t.Fatalf("dashboard after the first release: %d\n%s", code, page)
	}
	// The API's own routes are still theirs.
	if code, ctype, _ := fetch(t, in.c.Base+"/api/v1/apps"); code != 200 || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("/api/v1/apps: %d %q", code, ctype)
	}
	if code, _, body := fetch(t, in.c.Base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	st := in.applyWait(t, a.manifest(t, 1, blueGreen, `FAULT_NEVER_READY: "1"`))
	if st.Rollout.Phase != "rolled-back" || st.Rollout.Trigger != strategy.TriggerProgressDeadline {
		t.Fatalf("rollout %s by %q", st.Rollout.Phase, st.Rollout.Trigger)
	}
	id := incident.ID("dash", st.Rollout.Number)
	if st.Rollout.Incident != id {
		t.Fatalf("status names incident %q, want %q", st.Rollout.Incident, id)
	}
	link := `<a href="/incidents/` + id + `">`
	waitFor(t, 15*time.Second, "the incident on the dashboard", func() bool {
		_, _, page = fetch(t, in.c.Base+"/")
		return strings.Contains(page, link)
	})
	if !strings.Contains(page, "rolled-back") || !strings.Contains(page, "Stable revision <b>1</b>") {
		t.Fatalf("dashboard after the rollback:\n%s", page)
	}
	code, ctype, report := fetch(t, in.c.Base+"/incidents/"+id)
	if code != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(report, "Incident "+id) || !strings.Contains(report, "<b>dash</b>") {
		t.Fatalf("report: %d %q\n%.500s", code, ctype, report)
	}
	if code, _, _ := fetch(t, in.c.Base+"/incidents/dash-999"); code != http.StatusNotFound {
		t.Fatalf("unknown incident: %d", code)
	}
}
