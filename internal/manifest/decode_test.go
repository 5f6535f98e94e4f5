package manifest

import (
	"testing"
	"time"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top-level field", doc("replica: 2"),
			[]string{`app.yaml:5: replica: unknown field; did you mean "replicas"?`}},
		{"unknown field at depth", doc("strategy:", "  canary:", "    steps:", "      - setWeight: 5", "      - analyze:", "          for: 1m", "          maxwait: 2m", "          frobnicate: true"),
			[]string{
				`app.yaml:11: strategy.canary.steps[1].analyze.maxwait: unknown field; did you mean "maxWait"?`,
				"app.yaml:12: strategy.canary.steps[1].analyze.frobnicate: unknown field",
			}},
		{"integer from a word", doc("replicas: two"),
			[]string{`app.yaml:5: replicas: expected an integer, got string "two"`}},
		{"integer from a quoted number", doc(`replicas: "2"`),
			[]string{`app.yaml:5: replicas: expected an integer, got string "2"`}},
		{"integer from a float", doc("replicas: 1e12"),
			[]string{"app.yaml:5: replicas: expected an integer, got number 1e12"}},
		{"integer from a fraction", doc("history: 2.5"),
			[]string{"app.yaml:5: history: expected an integer, got number 2.5"}},
		{"integer too large", doc("replicas: 99999999999999999999"),
			[]string{"app.yaml:5: replicas: number 99999999999999999999 is out of range"}},
		{"integer too small", doc("replicas: -99999999999999999999"),
			[]string{"app.yaml:5: replicas: number -99999999999999999999 is out of range"}},
		{"integer from a list", doc("replicas: [1]"),
			[]string{"app.yaml:5: replicas: expected an integer, got a list"}},
		{"integer from nothing", doc("replicas:"),
			[]string{"app.yaml:5: replicas: expected an integer, got nothing (null)"}},
		{"string from a boolean", doc("  env: {DEBUG: true}"),
			[]string{`app.yaml:5: run.env.DEBUG: expected a string, got boolean true (quote it to mean the text: "true")`}},
		{"string from a mapping", doc("image: {name: x}"),
			[]string{"app.yaml:5: image: expected a string, got a mapping"}},
		{"mapping from a string", "name: web\nlisten: 127.0.0.1:8080\nrun: ./web\n",
			[]string{`app.yaml:3: run: expected a mapping, got string "./web"`}},
		{"list from a string", "name: web\nlisten: 127.0.0.1:8080\nrun:\n  command: ./web --flag\n",
			[]string{`app.yaml:4: run.command: expected a list, got string "./web --flag"`}},
		{"boolean from yes", doc("probes:", "  readiness: {tcp: yes}"),
			[]string{`app.yaml:6: probes.readiness.tcp: expected true or false, got string "yes"`}},
		{"duration without unit", doc("probes:", "  readiness: {tcp: true, period: 5}"),
			[]string{`app.yaml:6: probes.readiness.period: expected a duration like "30s" or "1m30s", got integer 5`}},
		{"duration misspelt", doc("rollback: {window: 10 minutes}"),
			[]string{`app.yaml:5: rollback.window: expected a duration like "30s" or "1m30s", got string "10 minutes"`}},
		{"duration too long", doc("rollback: {window: 99999999999h}"),
			[]string{"app.yaml:5: rollback.window: duration 99999999999h is out of range"}},
		{"size suffix", doc("analysis:", "  checks:", "    - name: m", "      resources: {maxRSS: 12Xi}"),
			[]string{`app.yaml:8: analysis.checks[0].resources.maxRSS: expected a size in bytes, or with a suffix like "512Mi" (Ki, Mi, Gi, Ti), got string "12Xi"`}},
		{"size too large", doc("analysis:", "  checks:", "    - name: m", "      resources: {maxRSS: 99999999999999Gi}"),
			[]string{"app.yaml:8: analysis.checks[0].resources.maxRSS: size 99999999999999Gi is out of range"}},
		{"size negative", doc("analysis:", "  checks:", "    - name: m", "      resources: {maxRSS: -5}"),
			[]string{"app.yaml:8: analysis.checks[0].resources.maxRSS: must not be negative, got -5"}},
		{"float not finite", doc("analysis:", "  checks:", "    - name: m", "      resources: {maxCPU: .inf}"),
			[]string{"app.yaml:8: analysis.checks[0].resources.maxCPU: number .inf is out of range"}},
		{"int or percent", doc("strategy:", "  rolling: {maxSurge: lots, maxUnavailable: 1.5}"),
			[]string{
				`app.yaml:6: strategy.rolling.maxSurge: expected an integer or a percentage like "25%", got string "lots"`,
				`app.yaml:6: strategy.rolling.maxUnavailable: expected an integer or a percentage like "25%", got number 1.5`,
			}},
		{"duplicate key", doc("replicas: 2", "history: 3", "replicas: 3"),
			[]string{"app.yaml:7: replicas: duplicate key; first set at line 5"}},
		{"duplicate key in a map", doc("  env:", "    A: x", "    A: y"),
			[]string{"app.yaml:7: run.env.A: duplicate key; first set at line 6"}},
		{"merge key", doc("probes:", "  readiness: &p {tcp: true}", "  liveness:", "    <<: *p", "    period: 2s"),
			[]string{"app.yaml:8: probes.liveness: merge keys (<<) are not supported; write the fields out"}},
		{"key that is a list", doc("[a]: b"),
			[]string{"app.yaml:5: keys must be plain names, got a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestDocumentErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"empty", "", "app.yaml:1: manifest is empty"},
		{"only comments", "# nothing here\n\n", "app.yaml:1: manifest is empty"},
		{"only a separator", "---\n", "app.yaml:1: manifest is empty"},
		{"null", "~\n", "app.yaml:1: manifest is empty"},
		{"two documents", base + "---\n" + base, "app.yaml:5: a second YAML document starts here; a manifest is one document (remove the ---)"},
		{"a list", "- name: web\n", "app.yaml:1: a manifest is a mapping of fields (name: web …), got a list"},
		{"a scalar", "web\n", `app.yaml:1: a manifest is a mapping of fields (name: web …), got string "web"`},
		{"unclosed list", "name: web\nlisten: [a\nreplicas: 2\n", "app.yaml:2: invalid YAML: did not find expected ',' or ']'"},
		{"bad indentation", "name: web\nrun:\n  command: [x]\n env: {}\n", "app.yaml:4: invalid YAML: did not find expected key"},
		{"unclosed quote", "name: web\nimage: 'x\n", "app.yaml:2: invalid YAML: found unexpected end of stream"},
		{"syntax error on line 1", "name: : web\n", "app.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"tab indentation", "name: web\nrun:\n\tcommand: [x]\n", "app.yaml:3: invalid YAML: found character that cannot start any token"},
		{"control character", "name: web\nlisten: 127.0.0.1:8080\nimage: a\x01b\n", "app.yaml:3: invalid YAML: control characters are not allowed"},
		{"unknown alias", "name: web\nimage: *nothing\n", `app.yaml:2: invalid YAML: unknown anchor 'nothing' referenced`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, []string{tt.want}) })
	}
}

func TestDecodeAccepts(t *testing.T) {
	src := doc(
		"replicas: 0x10", // YAML integers may use a base prefix
		"history: 1_000", // and underscores
		"probes:",
		"  readiness: &probe {http: /healthz, period: 500ms}",
		"  liveness: *probe", // aliases are followed
		"strategy:",
		"  canary:",
		"    steps:",
		"      - setWeight: 10",
		"      - pause:", // a key without a value is an empty mapping
		"analysis:",
		"  checks:",
		"    - name: m",
		"      resources: {maxRSS: 1536Mi, maxCPU: 2, maxFDs: 100}",
		"    - name: r",
		"      compare: {metric: errorRate, maxIncrease: 0.01}", // a number where a string is kept
	)
	app, err := Parse("app.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if app.Replicas != 16 || app.History != 1000 {
		t.Errorf("replicas, history = %d, %d; want 16, 1000", app.Replicas, app.History)
	}
	if r, l := app.Probes.Readiness, app.Probes.Liveness; r.HTTP != "/healthz" || l.HTTP != "/healthz" ||
		r.Period.D() != 500*time.Millisecond || l.Timeout.D() != 500*time.Millisecond {
		t.Errorf("probes = %+v, %+v", r, l)
	}
	if r, l := app.Probes.Readiness, app.Probes.Liveness; r == l {
		t.Error("readiness and liveness share one Probe; an alias must give each its own copy")
	}
	if p := app.Strategy.Canary.Steps[1].Pause; p == nil || p.For != 0 {
		t.Errorf("steps[1].pause = %+v, want an empty pause", p)
	}
	res := app.Analysis.Checks[0].Resources
	if res.MaxRSS != 1536<<20 || res.MaxCPU != 2 || res.MaxFDs != 100 {
		t.Errorf("resources = %+v", res)
	}
	if got := app.Analysis.Checks[1].Compare.MaxIncrease; got != "0.01" {
		t.Errorf("maxIncrease = %q, want 0.01 as written", got)
	}
}
