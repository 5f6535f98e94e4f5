package manifest

import (
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/signal/journey"
)

// canary is a canary strategy of one step, followed by the lines given;
// its first added line is line 9.
func canary(lines ...string) string {
	return doc(append([]string{"strategy:", "  canary:", "    steps: [{setWeight: 10}]", "    match:"}, lines...)...)
}

func TestValidationRulesForRollbackFields(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"webhook valid", doc("analysis:", "  checks:", "    - name: judge",
			"      webhook: {url: http://127.0.0.1:9000/judge, timeout: 1m, metadata: {team: pay}}"), nil},
		{"webhook url", doc("analysis:", "  checks:",
			"    - name: a", "      webhook: {}",
			"    - name: b", "      webhook: {url: ftp://judge.example/v}",
			"    - name: c", "      webhook:", "        url: 'http://'"),
			[]string{
				"app.yaml:8: analysis.checks[0].webhook.url: is required: the judge's http:// or https:// URL, like http://127.0.0.1:9000/judge",
				`app.yaml:10: analysis.checks[1].webhook.url: "ftp://judge.example/v": want an http or https URL such as https://judge.example/verdict`,
				`app.yaml:13: analysis.checks[2].webhook.url: "http://" has no host`,
			}},
		{"webhook timeout", doc("analysis:", "  checks:",
			"    - name: a", "      webhook:", "        url: http://127.0.0.1:9000", "        timeout: 0s",
			"    - name: b", "      webhook:", "        url: http://127.0.0.1:9000", "        timeout: 61s"),
			[]string{
				"app.yaml:10: analysis.checks[0].webhook.timeout: must be a duration greater than 0, got 0s",
				"app.yaml:14: analysis.checks[1].webhook.timeout: must be at most 1m0s, got 1m1s",
			}},
		{"webhook with failIf", doc("analysis:", "  checks:", "    - name: a", "      webhook: {url: http://127.0.0.1:9000}", "      failIf: result > 1"),
			[]string{"app.yaml:9: analysis.checks[0].failIf: is only allowed with prometheus"}},
		{"journey valid", doc("analysis:", "  checks:", "    - name: login", "      journey:", "        timeout: 5s", "        steps:",
			"          - {name: login, method: POST, path: /login, body: 'u=a', expectStatus: 303}",
			"          - {name: me, path: /me, headers: {Accept: text/html}, expectBody: 'Hello, \\w+'}"), nil},
		{"journey without steps", doc("analysis:", "  checks:", "    - name: a", "      journey: {timeout: -1s}", "    - name: b", "      journey:", "        steps: []"),
			[]string{
				"app.yaml:8: analysis.checks[0].journey.timeout: must be a duration greater than 0, got -1s",
				"app.yaml:8: analysis.checks[0].journey.steps: at least one step is required, like - {name: home, path: /}",
				"app.yaml:11: analysis.checks[1].journey.steps: at least one step is required, like - {name: home, path: /}",
			}},
		{"journey steps", doc("analysis:", "  checks:", "    - name: a", "      journey:", "        steps:",
			"          - path: /",
			"          - name: buy",
			"            method: FETCH",
			"            path: cart",
			"            expectStatus: 700",
			"            expectBody: '(open'",
			"            headers:",
			"              Bad Name: x",
			"              X-Ok: y"),
			[]string{
				`app.yaml:12: analysis.checks[0].journey.steps[1].method: method "FETCH": want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`,
				`app.yaml:13: analysis.checks[0].journey.steps[1].path: path "cart": want a path that starts with / and has no spaces`,
				"app.yaml:14: analysis.checks[0].journey.steps[1].expectStatus: expectStatus 700: want 100..599",
				"app.yaml:15: analysis.checks[0].journey.steps[1].expectBody: expectBody: error parsing regexp: missing closing ): `(open`",
				`app.yaml:17: analysis.checks[0].journey.steps[1].headers.Bad Name: header "Bad Name": want a token name and a value on one line`,
			}},
		{"journey unknown step field", doc("analysis:", "  checks:", "    - name: a", "      journey:", "        steps:", "          - {path: /, status: 200}"),
			[]string{`app.yaml:10: analysis.checks[0].journey.steps[0].status: unknown field`}},
		{"alpha valid", doc("analysis: {alpha: 0.5}"), nil},
		{"alpha zero", doc("analysis:", "  alpha: 0"),
			[]string{"app.yaml:6: analysis.alpha: must be a probability greater than 0 and at most 0.5, like 0.01 (the default), got 0"}},
		{"alpha too big", doc("analysis: {alpha: 0.6}"),
			[]string{"app.yaml:5: analysis.alpha: must be a probability greater than 0 and at most 0.5, like 0.01 (the default), got 0.6"}},
		{"alpha text", doc("analysis: {alpha: 1%}"),
			[]string{`app.yaml:5: analysis.alpha: expected a number, got string "1%"`}},
		{"match valid", canary("      - header: {name: X-Canary, value: always}", "      - cookie: {name: canary, value: '1'}",
			"      - header: {name: x-canary, value: yes please}"), nil},
		{"match rule fields", canary("      - {}", "      - header: {name: X-Canary, value: a}", "        cookie: {name: c, value: b}"),
			[]string{
				"app.yaml:9: strategy.canary.match[0]: set one of header and cookie, like - header: {name: X-Canary, value: always}",
				"app.yaml:10: strategy.canary.match[1]: set only one of header and cookie in a rule; got header and cookie (write two rules to accept either)",
			}},
		{"match header names", canary("      - header: {value: a}", "      - header: {name: 'X Canary', value: a}", "      - header: {name: host, value: a}",
			"      - header: {name: Cookie, value: a}", "      - header: {name: Content-Length, value: '1'}",
			"      - header: {name: transfer-encoding, value: chunked}", "      - header: {name: Connection, value: close}"),
			[]string{
				"app.yaml:9: strategy.canary.match[0].header.name: is required: the request header to match, like X-Canary",
				"app.yaml:10: strategy.canary.match[1].header.name: must be a header name: letters, digits and !#$%&'*+-.^_`|~, got \"X Canary\"",
				"app.yaml:11: strategy.canary.match[2].header.name: cannot match on Host: it names the site the request is for, not who sent it; use a header of your own, like X-Canary",
				`app.yaml:12: strategy.canary.match[3].header.name: cannot match on Cookie: to match a cookie, write a cookie rule: - cookie: {name: canary, value: "1"}`,
				"app.yaml:13: strategy.canary.match[4].header.name: cannot match on Content-Length: it describes how the body is framed, not who sent the request; use a header of your own, like X-Canary",
				"app.yaml:14: strategy.canary.match[5].header.name: cannot match on Transfer-Encoding: it describes how the body is framed, not who sent the request; use a header of your own, like X-Canary",
				"app.yaml:15: strategy.canary.match[6].header.name: cannot match on Connection: it is hop-by-hop: a proxy in front of lastgood may drop or change it; use a header of your own, like X-Canary",
			}},
		{"match header values", canary("      - header: {name: X-A}", "      - header: {name: X-B, value: \"a\\nb\"}", "      - header: {name: X-C, value: ' a'}"),
			[]string{
				"app.yaml:9: strategy.canary.match[0].header.value: is required: the exact value the header must have",
				`app.yaml:10: strategy.canary.match[1].header.value: must not contain control characters, got "a\nb"`,
				`app.yaml:11: strategy.canary.match[2].header.value: must not start or end with spaces: HTTP drops them, so the rule would never match, got " a"`,
			}},
		{"match cookies", canary("      - cookie: {name: 'a;b', value: ''}", "      - cookie: {name: c, value: 'x y'}", "      - cookie: {value: '1'}"),
			[]string{
				"app.yaml:9: strategy.canary.match[0].cookie.name: must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, got \"a;b\"",
				"app.yaml:9: strategy.canary.match[0].cookie.value: is required: the exact value the cookie must have",
				`app.yaml:10: strategy.canary.match[1].cookie.value: must be a cookie value: printable ASCII without spaces and without " , ; or \, got "x y"`,
				"app.yaml:11: strategy.canary.match[2].cookie.name: is required: the cookie to match, like canary",
			}},
		{"match session cookie", "sessionAffinity: {}\n" + canary("      - cookie: {name: lastgood-web, value: '2'}"),
			[]string{"app.yaml:10: strategy.canary.match[0].cookie.name: must differ from sessionAffinity.cookieName (lastgood-web): lastgood sets that cookie itself"}},
		{"match duplicates", canary("      - header: {name: X-Canary, value: a}", "      - header: {name: x-canary, value: a}",
			"      - cookie: {name: c, value: a}", "      - cookie: {name: c, value: a}", "      - cookie: {name: C, value: a}"),
			[]string{
				"app.yaml:10: strategy.canary.match[1]: is the same rule as match[0]",
				"app.yaml:12: strategy.canary.match[3]: is the same rule as match[2]",
			}},
		{"match unknown field", canary("      - header: {name: X-Canary, value: a, regex: true}"),
			[]string{`app.yaml:9: strategy.canary.match[0].header.regex: unknown field`}},
		{"match not a list", canary("        header: {name: X-Canary, value: a}"),
			[]string{"app.yaml:9: strategy.canary.match: expected a list, got a mapping"}},
		{"onNoData empty", doc("rollback: {onNoData: ''}"),
			[]string{`app.yaml:5: rollback.onNoData: must be wait, pass or fail, got ""`}},
		{"onNoData case", doc("rollback:", "  onNoData: Fail"),
			[]string{`app.yaml:6: rollback.onNoData: must be wait, pass or fail, got "Fail"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestRollbackFieldDefaults(t *testing.T) {
	app := mustParse(t, doc(
		"analysis:",
		"  checks:",
		"    - name: judge",
		"      webhook: {url: http://127.0.0.1:9000/judge}",
		"    - name: home",
		"      journey:",
		"        steps: [{path: /}, {path: /x, method: HEAD, expectStatus: 0, headers: {}}]",
		"strategy:",
		"  canary:",
		"    steps: [{setWeight: 10}]",
		"    match: [{header: {name: x-canary-user, value: qa}}]",
	))
	an := app.Analysis
	if an.Alpha != 0.01 {
		t.Errorf("analysis.alpha = %g, want 0.01", an.Alpha)
	}
	if got := an.Checks[0].Webhook.Timeout.D(); got != 10*time.Second {
		t.Errorf("webhook.timeout = %s, want 10s", got)
	}
	j := an.Checks[1].Journey
	if got := j.Timeout.D(); got != 10*time.Second {
		t.Errorf("journey.timeout = %s, want 10s", got)
	}
	want := []journey.Step{{Method: "GET", Path: "/", ExpectStatus: 200}, {Method: "HEAD", Path: "/x", ExpectStatus: 200}}
	for i, s := range j.Steps {
		if s.Method != want[i].Method || s.Path != want[i].Path || s.ExpectStatus != want[i].ExpectStatus || s.Headers != nil {
			t.Errorf("journey.steps[%d] = %+v, want %+v", i, s, want[i])
		}
	}
	if h := app.Strategy.Canary.Match[0].Header; h.Name != "X-Canary-User" || h.Value != "qa" {
		t.Errorf("match[0].header = %+v, want the name in canonical form and the value as written", h)
	}
	if app := mustParse(t, doc("analysis: {}")); app.Analysis.Alpha != 0.01 {
		t.Errorf("analysis: {} gives alpha %g, want 0.01", app.Analysis.Alpha)
	}
	if app := mustParse(t, doc("strategy: {canary: {steps: [{setWeight: 5}], match: []}}")); app.Strategy.Canary.Match != nil {
		t.Errorf("match: [] = %#v, want nil (the same as none)", app.Strategy.Canary.Match)
	}
}

// TestRollbackFieldsFormatting: the same new fields written two ways give
// the same canonical bytes, so lastgood diff shows no change.
func TestRollbackFieldsFormatting(t *testing.T) {
	a := mustParse(t, doc(
		"strategy:",
		"  canary:",
		"    steps: [{setWeight: 10}]",
		"    match:",
		"      - header: {name: X-Canary, value: always}",
		"analysis:",
		"  checks:",
		"    - name: j",
		"      journey: {steps: [{path: /, method: GET, expectStatus: 200}]}",
		"    - name: w",
		"      webhook: {url: http://127.0.0.1:9000, timeout: 10s, metadata: {}}",
	))
	b := mustParse(t, doc(
		"analysis: {alpha: 1e-2, interval: 1s, checks: [{name: j, journey: {timeout: 10000ms, steps: [{path: /}]}},",
		"  {name: w, webhook: {url: 'http://127.0.0.1:9000'}}]}",
		"strategy: {canary: {match: [{header: {value: always, name: x-canary}}], steps: [{setWeight: 10}]}}",
	))
	if ca, cb := a.Canonical(), b.Canonical(); string(ca) != string(cb) {
		t.Errorf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	if d := Diff(a, b); d != nil {
		t.Errorf("Diff = %v, want none", d)
	}
	c := mustParse(t, doc(
		"strategy: {canary: {match: [{header: {value: never, name: x-canary}}], steps: [{setWeight: 10}]}}",
		"analysis: {alpha: 0.05, checks: [{name: j, journey: {steps: [{path: /home}]}}, {name: w, webhook: {url: 'http://127.0.0.1:9000', timeout: 20s}}]}",
	))
	want := []Change{
		{Field: "strategy.canary.match[0].header.value", Old: "always", New: "never"},
		{Field: "analysis.alpha", Old: "0.01", New: "0.05"},
		{Field: "analysis.checks[0].journey.steps[0].path", Old: "/", New: "/home"},
		{Field: "analysis.checks[1].webhook.timeout", Old: "10s", New: "20s"},
	}
	got := Diff(a, c)
	if len(got) != len(want) {
		t.Fatalf("Diff = %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Diff[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
