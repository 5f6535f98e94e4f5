package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/lastgood/lastgood/internal/analysis"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
)

// view is what the index page shows.
type view struct {
	Now           time.Time
	Who, Role     string // who the page is for: the token's name and role
	CSRF          string // the session's CSRF token; "" hides the buttons
	Apps          []appRow
	Incidents     []incidentRow
	MoreIncidents int
	Events        []store.Event // newest first
	Problems      []string
}

// When writes a time in UTC, briefly: the clock alone for today.
func (v view) When(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	if y, m, d := t.Date(); y == v.Now.Year() && m == v.Now.Month() && d == v.Now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

type appRow struct {
	Name, Listen, Preview string
	Stable, Latest        int
	Rollout               *rolloutRow
	Traffic               []routeRow
	Checks                []analysis.Result
	Replicas              []controller.Replica
	Actions               []button
}

// button is one action the page offers on an app.
type button struct {
	Verb, Label, Note string
}

// buttons are the actions that make sense in an app's state: promote and
// abort while a rollout runs (no promote for rolling), undo when none does
// and there is an earlier revision to return to.
func buttons(a controller.AppStatus) []button {
	r := a.Rollout
	if r != nil && !strategy.Phase(r.Phase).Final() {
		var out []button
		if r.Strategy != strategy.Rolling {
			out = append(out, button{"promote", "Promote", fmt.Sprintf("skip the current wait of rollout #%d", r.ID)})
		}
		abort := button{"abort", "Abort", fmt.Sprintf("end rollout #%d", r.ID)}
		if r.From > 0 {
			abort.Label = fmt.Sprintf("Abort: back to revision %d", r.From)
			abort.Note += fmt.Sprintf(" and return all traffic to revision %d", r.From)
		}
		return append(out, abort)
	}
	if a.Stable > 0 && a.Latest > 1 {
		return []button{{"undo", "Undo", "return to the previous stable revision, as a new revision"}}
	}
	return nil
}

type rolloutRow struct {
	ID               int64
	From, To         int
	Strategy, Phase  string
	Step             string
	Trigger, Reason  string
	Started, Ended   time.Time
	Failed, Finished bool
}

type routeRow struct {
	Revision, Weight, Percent, Backends int
	Role                                string // stable, new or other: a CSS class
}

type incidentRow struct {
	incident.Summary
	Detect, Back string
}

func appView(a controller.AppStatus) appRow {
	row := appRow{Name: a.Name, Listen: a.Listen, Preview: a.Preview, Stable: a.Stable, Latest: a.Latest, Replicas: a.Replicas, Actions: buttons(a)}
	to := 0
	if r := a.Rollout; r != nil {
		ro := &rolloutRow{ID: r.ID, From: r.From, To: r.To, Strategy: r.Strategy, Phase: r.Phase,
			Trigger: r.Trigger, Reason: r.Reason, Started: r.Started}
		if r.Detail.Phase != "" {
			ro.Phase = string(r.Detail.Phase)
		}
		if r.Detail.Reason != "" {
			ro.Reason = r.Detail.Reason
		}
		if r.Detail.Trigger != "" {
			ro.Trigger = r.Detail.Trigger
		}
		if r.Ended != nil {
			ro.Ended = *r.Ended
		}
		ro.Finished = strategy.Phase(ro.Phase).Final()
		ro.Failed = ro.Phase == store.PhaseRolledBack || ro.Phase == store.PhaseAborted
		switch {
		case r.Steps > 0 && r.Detail.Step < r.Steps:
			ro.Step = fmt.Sprintf("step %d of %d, %d%% on revision %d", r.Detail.Step+1, r.Steps, r.Detail.Weight, r.To)
		case r.Steps > 0:
			ro.Step = fmt.Sprintf("final step: scale up revision %d", r.To)
		case !ro.Finished && r.Detail.Weight > 0:
			ro.Step = fmt.Sprintf("%d%% on revision %d", r.Detail.Weight, r.To)
		}
		row.Rollout, row.Checks, to = ro, r.Checks, r.To
	}
	total := 0
	for _, t := range a.Traffic {
		total += max(0, t.Weight)
	}
	for _, t := range a.Traffic {
		rt := routeRow{Revision: t.Revision, Weight: t.Weight, Backends: len(t.Backends), Role: "other"}
		if total > 0 && t.Weight > 0 {
			rt.Percent = (t.Weight*100 + total/2) / total
		}
		switch t.Revision {
		case a.Stable:
			rt.Role = "stable"
		case to:
			rt.Role = "new"
		}
		row.Traffic = append(row.Traffic, rt)
	}
	return row
}

// verdictClass maps a verdict to one of the page's CSS classes.
func verdictClass(v judge.Verdict) string {
	switch v {
	case judge.Pass:
		return "pass"
	case judge.Fail:
		return "fail"
	}
	return "inconclusive"
}

// render executes t into a buffer first, so a template error is a clean
// 500 rather than half a page.
func render(w http.ResponseWriter, code int, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

type message struct {
	Title, Text string
	Home        bool
}

const style = `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:0 0 .3em}.muted{color:#666}.small{font-size:12px}
table{border-collapse:collapse;width:100%;margin:.3em 0}td,th{border:1px solid #e2e2e2;padding:.2em .45em;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600}
.app{border:1px solid #ccc;border-radius:6px;padding:.7em 1em;margin:.8em 0}
.bar{display:flex;height:1.3em;background:#eee;border-radius:3px;overflow:hidden;margin:.3em 0}
.seg{height:100%;color:#fff;font-size:12px;line-height:1.3em;white-space:nowrap;overflow:hidden;text-indent:.3em}
.seg.stable{background:#2e7d32}.seg.new{background:#1565c0}.seg.other{background:#757575}
.v{font-weight:600;padding:0 .35em;border-radius:3px}
.v.pass{background:#e3f4e4;color:#1b5e20}.v.fail{background:#fde4e4;color:#b71c1c}.v.inconclusive{background:#f1f1f1;color:#555}
.phase{font-weight:600}.phase.failed{color:#b71c1c}.phase.promoted{color:#1b5e20}
.problem{background:#fff4e5;border:1px solid #f0c36d;padding:.3em .6em}
.actions{display:flex;gap:.5em;margin:.4em 0}.actions form{margin:0}
.actions button{font:inherit;padding:.2em .8em;border:1px solid #888;border-radius:4px;background:#f6f6f6;cursor:pointer}
.actions button.abort,.actions button.undo{border-color:#b71c1c;color:#b71c1c}
code{font-size:13px}
</style>`

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"verdictClass": verdictClass,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lastgood</title>
` + style + `</head><body>
<h1>lastgood</h1>
<p class="muted small">Refreshes every 2 seconds. Updated {{.Now.Format "2006-01-02 15:04:05"}} UTC. {{if .Who}}Signed in as <b>{{.Who}}</b> ({{.Role}}){{if not .CSRF}}: read-only{{end}}.{{end}} Every action: the <code>lastgood</code> CLI or the API.</p>
{{range .Problems}}<p class="problem">{{.}}</p>{{end}}
<h2>Apps</h2>
{{range .Apps}}<section class="app" id="app-{{.Name}}">
<h3>{{.Name}}</h3>
{{if $.CSRF}}{{$app := .Name}}{{with .Actions}}<div class="actions">{{range .}}<form method="post" action="/apps/{{$app}}/{{.Verb}}"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit" class="{{.Verb}}" title="{{.Note}}">{{.Label}}</button></form>{{end}}</div>
{{end}}{{end}}<p>Stable revision <b>{{if .Stable}}{{.Stable}}{{else}}none yet{{end}}</b>, latest {{.Latest}}, listening on <code>{{.Listen}}</code>{{with .Preview}}, preview on <code>{{.}}</code>{{end}}.</p>
{{with .Rollout}}<p>Rollout <b>#{{.ID}}</b>: revision {{.From}} → {{.To}} ({{.Strategy}}),
<span class="phase{{if .Failed}} failed{{else if .Finished}} promoted{{end}}">{{.Phase}}</span>{{with .Step}}, {{.}}{{end}};
started {{$.When .Started}}{{if not .Ended.IsZero}}, ended {{$.When .Ended}}{{end}}.</p>
{{if .Failed}}<p><b>Why</b> ({{.Trigger}}): {{.Reason}}</p>{{else if .Reason}}<p class="muted">{{.Reason}}</p>{{end}}
{{else}}<p class="muted">No rollout yet.</p>{{end}}
<h4>Traffic</h4>
{{if .Traffic}}<div class="bar">{{range .Traffic}}{{if .Percent}}<div class="seg {{.Role}}" style="width: {{.Percent}}%">r{{.Revision}} {{.Percent}}%</div>{{end}}{{end}}</div>
<p class="small">{{range $i, $t := .Traffic}}{{if $i}} · {{end}}revision {{.Revision}}: weight {{.Weight}} ({{.Percent}}%), {{.Backends}} ready backend{{if ne .Backends 1}}s{{end}}{{end}}</p>
{{else}}<p class="muted">No traffic routed.</p>{{end}}
<h4>Checks</h4>
{{if .Checks}}<table><tr><th>check</th><th>verdict</th><th>reason</th><th>at</th></tr>
{{range .Checks}}<tr><td>{{.Check}}</td><td><span class="v {{verdictClass .Verdict}}">{{.Verdict}}</span></td><td>{{.Reason}}</td><td>{{$.When .At}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No check is looking (checks run during a rollout and its rollback window).</p>{{end}}
<h4>Replicas</h4>
{{if .Replicas}}<table><tr><th>replica</th><th>revision</th><th>state</th><th>ready</th><th>restarts</th><th>last exit</th></tr>
{{range .Replicas}}<tr><td>{{.ID}}</td><td>{{.Revision}}</td><td>{{.State}}{{if .Stopping}} (stopping){{end}}</td><td>{{if .Ready}}yes{{else}}no{{end}}</td><td>{{.Restarts}}</td><td>{{.LastExit}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No replica runs.</p>{{end}}
</section>
{{else}}<p>No apps yet: <code>lastgood apply -f app.yaml</code></p>
{{end}}
<h2>Incidents</h2>
{{if .Incidents}}<table><tr><th>incident</th><th>app</th><th>revisions</th><th>kind</th><th>trigger</th><th>decided</th><th>time to detect</th><th>time to roll back</th></tr>
{{range .Incidents}}<tr><td><a href="/incidents/{{.ID}}">{{.ID}}</a></td><td>{{.App}}</td><td>{{.Arrow}}</td><td>{{.Kind}}{{if .Manual}} (by hand){{end}}</td><td>{{.Trigger}}</td><td>{{$.When .Decided.Time}}</td><td>{{.Detect}}</td><td>{{.Back}}</td></tr>
{{end}}</table>{{if .MoreIncidents}}<p class="muted small">{{.MoreIncidents}} older incidents: <code>lastgood incidents</code></p>{{end}}
{{else}}<p class="muted">No incidents: nothing has been rolled back, aborted or undone.</p>{{end}}
<h2>Latest events</h2>
{{if .Events}}<table><tr><th>time</th><th>app</th><th>type</th><th>message</th><th>by</th></tr>
{{range .Events}}<tr><td>{{$.When .Time}}</td><td>{{.App}}</td><td>{{.Type}}</td><td>{{.Message}}</td><td>{{.Actor}}</td></tr>
{{end}}</table><p class="muted small">Newest first; all of them: <code>lastgood events</code></p>
{{else}}<p class="muted">No events yet.</p>{{end}}
</body></html>
`))

var messagePage = template.Must(template.New("message").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lastgood: {{.Title}}</title>
` + style + `</head><body>
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
{{if .Home}}<p><a href="/">Back to the dashboard</a></p>{{end}}
</body></html>
`))
