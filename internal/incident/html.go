package incident

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// HTML writes the post-mortem as one self-contained page: inline CSS and
// SVG charts of the metric series (error rate and requests per revision
// over time, with the decision marked), no script and no remote asset, so
// it reads the same offline, attached to a ticket, or printed.
func HTML(w io.Writer, in *Incident) error {
	charts := []template.HTML{
		chart(in, "Error rate per revision (%)", func(p Point) float64 {
			if p.Requests == 0 {
				return 0
			}
			return 100 * float64(p.Errors) / float64(p.Requests)
		}),
		chart(in, "Requests per sample, per revision", func(p Point) float64 { return float64(p.Requests) }),
		chart(in, "Latency p99 per revision (ms)", func(p Point) float64 { return p.P99Ms }),
	}
	f := in.figureTexts()
	return page.Execute(w, struct {
		*Incident
		Charts                       []template.HTML
		Detect, Back, Recover, Blast string
		Revisions, ChangeHeading     string
	}{in, charts, f.detect, f.back, f.recover, f.blast, in.Arrow(), in.changeHeading()})
}

// chart draws one line per revision of f over the incident's series, with
// the decision as a vertical line. Empty when there is no series.
func chart(in *Incident, title string, f func(Point) float64) template.HTML {
	if len(in.Series) == 0 {
		return ""
	}
	const w, h, pad = 640.0, 200.0, 40.0
	t0, t1 := in.Series[0].At.Time, in.Series[len(in.Series)-1].At.Time
	t0 = minTime(t0, in.Decided.Time)
	t1 = maxTime(t1, in.Decided.Time)
	span := max(t1.Sub(t0).Seconds(), 1)
	top := 0.0
	lines := map[int][]Point{}
	for _, p := range in.Series {
		lines[p.Revision] = append(lines[p.Revision], p)
		top = max(top, f(p))
	}
	if top == 0 {
		top = 1
	}
	x := func(t time.Time) float64 { return pad + (w-2*pad)*t.Sub(t0).Seconds()/span }
	y := func(v float64) float64 { return h - pad - (h-2*pad)*v/top }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), w, h, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/><line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/>`,
		pad, h-pad, w-pad, h-pad, pad, pad, pad, h-pad)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="label">%.3g</text><text x="%g" y="%g" class="label">0</text>`, 2.0, pad+4, top, 2.0, h-pad)
	fmt.Fprintf(&b, `<line class="decision" x1="%.1f" y1="%g" x2="%.1f" y2="%g"/><text x="%.1f" y="%g" class="label">decision</text>`,
		x(in.Decided.Time), pad-10, x(in.Decided.Time), h-pad, x(in.Decided.Time)+4, pad-12)
	for i, rev := range slices.Sorted(maps.Keys(lines)) {
		var pts []string
		for _, p := range lines[rev] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At.Time), y(f(p))))
		}
		class := "restored"
		if rev == in.To {
			class = "failed"
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="%s"/><text x="%g" y="%g" class="label %s">revision %d</text>`,
			class, strings.Join(pts, " "), w-pad-90, pad+14*float64(i), class, rev)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="label">%s</text><text x="%g" y="%g" class="label">%s</text></svg></figure>`,
		pad, h-pad+16, t0.UTC().Format("15:04:05"), w-pad-50, h-pad+16, t1.UTC().Format("15:04:05"))
	return template.HTML(b.String())
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"stamp": func(m Millis) string { return stamp(m.Time) },
	"join":  strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Incident {{.ID}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
.figs td:first-child{width:40%}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:13px}
svg .axis{stroke:#888}svg .decision{stroke:#c00;stroke-dasharray:4 3}
svg polyline{fill:none;stroke-width:2}svg .failed{stroke:#c00;fill:#c00}svg polyline.restored{stroke:#06c}svg text.restored{fill:#06c}
svg polyline.failed{fill:none}svg .label{font-size:11px}figure{margin:1em 0}figcaption{font-weight:600}
</style></head><body>
<h1>Incident {{.ID}}</h1>
<p>Rollout #{{.Rollout}} of <b>{{.App}}</b>, revision {{.Revisions}} ({{.Strategy}}), ended <b>{{.Kind}}</b> at {{stamp .Decided}}{{if .Manual}}, by hand{{else}}, decided by lastgood{{end}}.</p>
<p><b>Why</b> ({{.Trigger}}): {{.Reason}}</p>
{{range .Target}}<p><b>Target unhealthy</b>: {{.}}</p>
{{end}}<h2>Figures</h2>
<table class="figs">
<tr><td>time to detect (first traffic → decision)</td><td>{{.Detect}}</td></tr>
<tr><td>time to roll back (decision → traffic on revision {{.From}})</td><td>{{.Back}}</td></tr>
<tr><td>time to recover</td><td>{{.Recover}}</td></tr>
{{with .Figures.RecordDelayMs}}<tr><td>recorded late (decision → in the event log; traffic had moved)</td><td>{{.}} ms</td></tr>
{{end}}<tr><td>blast radius</td><td>{{.Blast}}</td></tr>
</table>
<h2>Metrics</h2>
{{range .Charts}}{{.}}{{else}}<p>No metric series was recorded.</p>{{end}}
<h2>Verdicts</h2>
{{if .Verdicts}}<table><tr><th>time</th><th>check</th><th>verdict</th><th>reason</th></tr>
{{range .Verdicts}}<tr><td>{{stamp .At}}</td><td>{{.Check}}</td><td>{{if .Deciding}}<b>{{.Verdict}} (deciding)</b>{{else}}{{.Verdict}}{{end}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p>No check gave a verdict.</p>{{end}}
<h2>Timeline</h2>
<table><tr><th>+ms</th><th>time</th><th>event</th><th>message</th></tr>
{{range .Timeline}}<tr><td>{{.OffsetMs}}</td><td>{{stamp .At}}</td><td>{{.Type}}</td><td>{{.Message}}</td></tr>
{{end}}</table>
<h2>{{.ChangeHeading}}</h2>
{{if .Diff}}<table><tr><th>field</th><th>before</th><th>after</th></tr>
{{range .Diff}}<tr><td>{{.Field}}</td><td>{{.Old}}</td><td>{{.New}}</td></tr>
{{end}}</table>{{else if .ArtifactChanges}}<p>No manifest field changed; the artifacts below did.</p>{{else}}<p>Neither the manifest nor any artifact changed.</p>{{end}}
{{if .ArtifactChanges}}<table><tr><th>artifact</th><th>before</th><th>after</th><th>content</th></tr>
{{range .ArtifactChanges}}<tr><td>{{.Path}}</td><td>{{with .Old}}<code>{{.}}</code>{{else}}(none){{end}}</td><td>{{with .New}}<code>{{.}}</code>{{else}}(none){{end}}</td><td>{{if .Diff}}text diff below{{else}}{{.Note}}{{end}}</td></tr>
{{end}}</table>
{{range .ArtifactChanges}}{{if .Diff}}<pre class="diff">{{.Diff}}</pre>
{{end}}{{end}}{{end}}
{{with .Artifacts.From}}<p>Revision {{.Revision}}: <code>{{.Digest}}</code></p>{{end}}
{{with .Artifacts.To}}<p>Revision {{.Revision}}: <code>{{.Digest}}</code></p>{{end}}
{{range .Logs}}<h2>Log of revision {{.Revision}}: {{.File}}</h2>
{{if .Error}}<p>Could not be read: {{.Error}}</p>{{else}}{{if .Truncated}}<p>(earlier lines left out)</p>{{end}}<pre>{{range .Lines}}{{.}}
{{end}}</pre>{{end}}
{{end}}{{if .Traces}}<h2>Traces of revision {{.To}} (a sample: the slowest, the failed, and the shapes the stable uses least)</h2>
{{range .Traces}}<h3>Trace <code>{{.TraceID}}</code> ({{join .Why ", "}}): {{printf "%.3g" .DurationMs}} ms{{if .Failed}}, failed{{end}}, shape {{.Shape}}</h3>
<pre class="trace">{{.Tree}}</pre>
{{end}}{{end}}{{range .Warnings}}<p><i>{{.}}</i></p>{{end}}
</body></html>
`))
