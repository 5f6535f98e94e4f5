package manifest

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

// minimalCanonical is the canonical form of base: every default spelt out.
const minimalCanonical = `{"name":"web","listen":"127.0.0.1:8080","replicas":1,"run":{"command":["./web"]},` +
	`"probes":{"readiness":{"tcp":true,"period":"1s","timeout":"1s","failureThreshold":3,"successThreshold":1}},` +
	`"strategy":{"rolling":{"maxSurge":1,"maxUnavailable":0}},` +
	`"rollback":{"progressDeadline":"2m0s","window":"10m0s","onNoData":"wait"},"history":10}`

func mustParse(t *testing.T, src string) *App {
	t.Helper()
	app, err := Parse("app.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", src, err)
	}
	return app
}

func TestDefaults(t *testing.T) {
	app := mustParse(t, base)
	if got := string(app.Canonical()); got != minimalCanonical {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, minimalCanonical)
	}

	app = mustParse(t, doc(
		"probes:",
		"  readiness: {http: /healthz, period: 200ms}",
		"strategy:",
		"  blueGreen: {}",
		"analysis: {checks: [{name: e, compare: {metric: errorRate, maxIncrease: 0.01}}]}",
		"rollback: {window: 0s}",
	))
	if got := app.Probes.Readiness.Timeout.D(); got != 200*time.Millisecond {
		t.Errorf("timeout = %s, want the period (200ms) as it is below 1s", got)
	}
	if !app.Strategy.BlueGreen.AutoPromotes() || app.Strategy.BlueGreen.AutoPromote == nil {
		t.Error("blueGreen.autoPromote is not defaulted to true")
	}
	if app.Strategy.Rolling != nil {
		t.Error("a rolling strategy was added beside blueGreen")
	}
	if got := app.Analysis.Interval.D(); got != time.Second {
		t.Errorf("analysis.interval = %s, want 1s", got)
	}
	if got := app.Analysis.RouterInterval.D(); got != 100*time.Millisecond {
		t.Errorf("analysis.routerInterval = %s, want 100ms", got)
	}
	if got := app.Rollback.Window; got != 0 {
		t.Errorf("rollback.window = %s; a written 0s must stay 0", got)
	}

	app = mustParse(t, doc("strategy:", "  canary:", "    steps: [{analyze: {for: 40s}}]", "  "))
	if got := app.Strategy.Canary.Steps[0].Analyze.MaxWait.D(); got != 2*time.Minute {
		t.Errorf("analyze.maxWait = %s, want 3×for = 2m", got)
	}
	app = mustParse(t, doc("strategy: {rolling: {maxUnavailable: 2}}"))
	if r := app.Strategy.Rolling; r.MaxSurge != (IntOrPercent{Value: 1}) || r.MaxUnavailable != (IntOrPercent{Value: 2}) {
		t.Errorf("rolling = %+v, want maxSurge defaulted to 1", r)
	}
	if app := mustParse(t, doc()); app.SessionAffinity != nil {
		t.Errorf("sessionAffinity is on without being asked for: %+v", app.SessionAffinity)
	}
	if app := mustParse(t, doc("sessionAffinity: {}")); app.SessionAffinity == nil || app.SessionAffinity.CookieName != "lastgood-web" {
		t.Errorf("sessionAffinity: {} = %+v, want the default cookie", app.SessionAffinity)
	}
	app = mustParse(t, doc("sessionAffinity: {cookieName: sticky}"))
	if s := app.SessionAffinity; s.CookieName != "sticky" || s.MaxAge.D() != 24*time.Hour {
		t.Errorf("sessionAffinity = %+v", s)
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	design, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{
		"design":  string(design),
		"minimal": base,
		"blue-green": doc("image: registry.example/web@sha256:abc", "replicas: 3",
			"strategy: {blueGreen: {autoPromote: false, preview: 127.0.0.1:8081}}",
			"probes: {liveness: {tcp: true, initialDelay: 1500ms}}", "rollback: {window: 0s, onNoData: fail}"),
		"rolling percent": doc("strategy: {rolling: {maxSurge: 25%, maxUnavailable: 0%}}",
			"analysis: {checks: [{name: m, resources: {maxRSS: 1000, maxCPU: 0.25, maxFDs: 64}}]}"),
		"kubernetes only": "name: api\nimage: registry.example/api:2\n",
		"rollback fields": doc("strategy:", "  canary:", "    steps: [{setWeight: 5}, {analyze: {for: 30s}}]",
			"    match: [{header: {name: x-canary, value: always}}, {cookie: {name: canary, value: '1'}}]",
			"analysis:", "  alpha: 0.001", "  checks:",
			"    - {name: judge, webhook: {url: 'http://127.0.0.1:9000/judge', timeout: 3s, metadata: {team: pay, tier: '1'}}}",
			"    - name: checkout",
			"      journey:",
			"        steps:",
			"          - {name: login, method: POST, path: /login, body: 'u=a&p=b', headers: {Content-Type: application/x-www-form-urlencoded}, expectStatus: 303}",
			"          - {name: cart, path: '/cart?x=1', expectBody: 'total: [0-9]+'}"),
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			app := mustParse(t, src)
			canon := app.Canonical()
			back, err := FromJSON(canon)
			if err != nil {
				t.Fatalf("FromJSON(%s): %v", canon, err)
			}
			if !reflect.DeepEqual(app, back) {
				t.Errorf("round trip changed the App:\n%s\n%s", canon, back.Canonical())
			}
			if again := back.Canonical(); string(again) != string(canon) {
				t.Errorf("Canonical is not stable:\n%s\n%s", canon, again)
			}
			if d := Diff(app, back); d != nil {
				t.Errorf("Diff after round trip = %v", d)
			}
		})
	}
}

// TestCanonicalIgnoresFormatting: the same manifest written two ways has
// the same canonical bytes.
func TestCanonicalIgnoresFormatting(t *testing.T) {
	block := `# the web app
name: web
listen: 127.0.0.1:8080
replicas: 2
run:
  command:
    - ./bin/web
    - --verbose
  env:
    B: "2"
    A: one
strategy:
  canary:
    steps:
      - setWeight: 10
      - pause:
          for: 60s
analysis:
  checks:
    - name: mem
      resources:
        maxRSS: 512Mi
rollback:
  window: 10m
`
	flow := `{rollback: {window: 600s}, history: 10,
  analysis: {checks: [{resources: {maxRSS: 536870912}, name: mem}], interval: 1s},
  strategy: {canary: {steps: [{setWeight: 0x0a}, {pause: {for: 1m}}]}},
  run: {env: {A: "one", B: 2}, command: ["./bin/web", '--verbose'], artifacts: []},
  replicas: 2, listen: "127.0.0.1:8080", name: 'web'}
`
	a, b := mustParse(t, block), mustParse(t, flow)
	if ca, cb := a.Canonical(), b.Canonical(); string(ca) != string(cb) {
		t.Errorf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	if d := Diff(a, b); d != nil {
		t.Errorf("Diff = %v, want none", d)
	}
}

func TestFromJSONErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"unknown field", `{"name":"web","image":"x","replicaz":2}`, `invalid JSON: json: unknown field "replicaz"`},
		{"trailing data", `{"name":"web","image":"x"} {}`, "invalid JSON: data after the manifest"},
		{"wrong type", `{"name":"web","image":"x","replicas":"2"}`, "invalid JSON: json: cannot unmarshal string into Go struct field App.replicas of type int"},
		{"bad duration", `{"name":"web","image":"x","rollback":{"window":"soon"}}`, `invalid JSON: duration: time: invalid duration "soon"`},
		{"invalid value", `{"name":"web","image":"x","replicas":0}`, "replicas: must be between 1 and 256, got 0"},
		{"alpha", `{"name":"web","image":"x","analysis":{"alpha":0.7}}`,
			"analysis.alpha: must be a probability greater than 0 and at most 0.5, like 0.01 (the default), got 0.7"},
		{"unknown journey field", `{"name":"web","image":"x","analysis":{"checks":[{"name":"j","journey":{"steps":[{"path":"/","status":200}]}}]}}`,
			`invalid JSON: json: unknown field "status"`},
		{"journey step", `{"name":"web","image":"x","analysis":{"checks":[{"name":"j","journey":{"steps":[{"path":"x"}]}}]}}`,
			`analysis.checks[0].journey.steps[0].path: path "x": want a path that starts with / and has no spaces`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := FromJSON([]byte(tt.json))
			if app != nil || err == nil {
				t.Fatalf("FromJSON = %v, %v; want an error", app, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) = false")
			}
		})
	}

	// Fields a hand-written JSON manifest leaves out are defaulted.
	app, err := FromJSON([]byte(`{"name":"web","listen":"127.0.0.1:8080","run":{"command":["./web"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(app.Canonical()); got != minimalCanonical {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, minimalCanonical)
	}
}
