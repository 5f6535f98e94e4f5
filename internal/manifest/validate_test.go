package manifest

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid manifest of four lines; cases add lines from line 5 on.
const base = `name: web
listen: 127.0.0.1:8080
run:
  command: [./web]
`

func doc(lines ...string) string { return base + strings.Join(lines, "\n") + "\n" }

// problems parses src and returns each problem's text, or nil.
func problems(t *testing.T, src string) []string {
	t.Helper()
	app, err := Parse("app.yaml", []byte(src))
	if err == nil {
		if app == nil {
			t.Fatal("Parse returned neither an App nor an error")
		}
		return nil
	}
	if app != nil {
		t.Errorf("Parse returned an App with an error")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func checkProblems(t *testing.T, src string, want []string) {
	t.Helper()
	got := problems(t, src)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems with\n%s\ngot:\n  %s\nwant:\n  %s", src, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"valid", base, nil},
		{"name required", "listen: 127.0.0.1:8080\nrun: {command: [./web]}\n",
			[]string{"app.yaml:1: name: is required"}},
		{"name too long", strings.Replace(base, "web", strings.Repeat("a", 64), 1),
			[]string{"app.yaml:1: name: must be at most 63 characters, got 64"}},
		{"name 63 chars", strings.Replace(base, "web", strings.Repeat("a", 63), 1), nil},
		{"name pattern", strings.Replace(base, "web", "Web_1", 1),
			[]string{`app.yaml:1: name: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "Web_1"`}},
		{"name ends with dash", strings.Replace(base, "web", "web-", 1),
			[]string{`app.yaml:1: name: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "web-"`}},
		{"listen required", "name: web\nrun: {command: [./web]}\n",
			[]string{"app.yaml:1: listen: is required for the local engine: the address where lastgood serves this app, like 127.0.0.1:8080"}},
		{"listen not needed with image", "name: web\nimage: registry.example/web:1\n", nil},
		{"listen without port", strings.Replace(base, "127.0.0.1:8080", "8080", 1),
			[]string{`app.yaml:2: listen: must be host:port, like 127.0.0.1:8080, got "8080"`}},
		{"listen named port", strings.Replace(base, "127.0.0.1:8080", "127.0.0.1:http", 1),
			[]string{`app.yaml:2: listen: port must be a number between 1 and 65535, got "http"`}},
		{"listen port too big", strings.Replace(base, "127.0.0.1:8080", "127.0.0.1:65536", 1),
			[]string{`app.yaml:2: listen: port must be a number between 1 and 65535, got "65536"`}},
		{"listen host name", strings.Replace(base, "127.0.0.1:8080", "example.com:80", 1),
			[]string{`app.yaml:2: listen: host must be an IP address or localhost, got "example.com"`}},
		{"listen localhost and ipv6", strings.Replace(base, "127.0.0.1:8080", "localhost:8080", 1) + "strategy: {blueGreen: {preview: '[::1]:8081'}}\n", nil},
		{"replicas negative", doc("replicas: -3"),
			[]string{"app.yaml:5: replicas: must be between 1 and 256, got -3"}},
		{"replicas zero is not defaulted", doc("replicas: 0"),
			[]string{"app.yaml:5: replicas: must be between 1 and 256, got 0"}},
		{"replicas too many", doc("replicas: 257"),
			[]string{"app.yaml:5: replicas: must be between 1 and 256, got 257"}},
		{"replicas largest int", doc("replicas: 9223372036854775807"),
			[]string{"app.yaml:5: replicas: must be between 1 and 256, got 9223372036854775807"}},
		{"run or image", "name: web\nlisten: 127.0.0.1:8080\n",
			[]string{"app.yaml:1: run: is required: set run (to run the app on this machine) or image (to run it on Kubernetes)"}},
		{"run and image together", doc("image: registry.example/web:1"), nil},
		{"command required", "name: web\nlisten: 127.0.0.1:8080\nrun:\n  command: []\n",
			[]string{"app.yaml:4: run.command: is required: the program and its arguments, like [./bin/web, --flag]"}},
		{"command empty argument", "name: web\nlisten: 127.0.0.1:8080\nrun:\n  command:\n    - ./web\n    - ''\n",
			[]string{"app.yaml:6: run.command[1]: must not be empty"}},
		{"NUL characters", "name: web\nlisten: 127.0.0.1:8080\nrun:\n  command: [./web, \"a\\0b\"]\n  env: {A: \"\\0\"}\n",
			[]string{
				"app.yaml:4: run.command[1]: must not contain a NUL character",
				"app.yaml:5: run.env.A: must not contain a NUL character",
			}},
		{"bad name, default cookie", strings.Replace(base, "web", "We b", 1),
			[]string{`app.yaml:1: name: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "We b"`}},
		{"env names", doc("  env:", "    GOOD_1: x", "    1BAD: x", "    PORT: '80'", "    LASTGOOD_REVISION: x"),
			[]string{
				"app.yaml:7: run.env.1BAD: variable names are letters, digits and _, not starting with a digit",
				"app.yaml:8: run.env.PORT: is set by lastgood for every replica (PORT, LASTGOOD_APP, LASTGOOD_REVISION); choose another name",
				"app.yaml:9: run.env.LASTGOOD_REVISION: is set by lastgood for every replica (PORT, LASTGOOD_APP, LASTGOOD_REVISION); choose another name",
			}},
		{"artifacts", doc("  artifacts:", "    - ./bin/web", "    - ''", "    - bin/web"),
			[]string{
				"app.yaml:7: run.artifacts[1]: must not be empty",
				`app.yaml:8: run.artifacts[2]: "bin/web" is listed twice (also run.artifacts[0])`,
			}},
		{"probe both http and tcp", doc("probes:", "  readiness: {http: /healthz, tcp: true}"),
			[]string{"app.yaml:6: probes.readiness: set one of http and tcp, not both"}},
		{"probe neither http nor tcp", doc("probes:", "  liveness: {period: 2s}"),
			[]string{"app.yaml:6: probes.liveness: set one of http (a path like /healthz) and tcp (true)"}},
		{"probe http path", doc("probes:", "  readiness:", "    http: healthz"),
			[]string{`app.yaml:7: probes.readiness.http: must be a path starting with /, got "healthz"`}},
		{"probe durations", doc("probes:", "  readiness:", "    tcp: true", "    initialDelay: -1s", "    period: 0s", "    timeout: -1s"),
			[]string{
				"app.yaml:8: probes.readiness.initialDelay: must not be negative, got -1s",
				"app.yaml:9: probes.readiness.period: must be a duration greater than 0, got 0s",
				"app.yaml:10: probes.readiness.timeout: must be a duration greater than 0, got -1s",
			}},
		{"probe timeout above period", doc("probes:", "  readiness: {tcp: true, period: 1s, timeout: 2s}"),
			[]string{"app.yaml:6: probes.readiness.timeout: must not be longer than period (1s), got 2s"}},
		{"probe thresholds", doc("probes:", "  readiness:", "    tcp: true", "    failureThreshold: 0", "    successThreshold: -1"),
			[]string{
				"app.yaml:8: probes.readiness.failureThreshold: must be at least 1, got 0",
				"app.yaml:9: probes.readiness.successThreshold: must be at least 1, got -1",
			}},
		{"session affinity", doc("sessionAffinity:", "  cookieName: a b", "  maxAge: 0s"),
			[]string{
				"app.yaml:6: sessionAffinity.cookieName: must be a cookie name: letters, digits and !#$%&'*+-.^_`|~, got \"a b\"",
				"app.yaml:7: sessionAffinity.maxAge: must be a duration greater than 0, got 0s",
			}},
		{"two strategies", doc("strategy:", "  canary: {steps: [{setWeight: 10}]}", "  rolling: {}"),
			[]string{"app.yaml:5: strategy: set only one of blueGreen, canary and rolling; got canary and rolling"}},
		{"preview not an address", doc("strategy:", "  blueGreen: {preview: 'nope'}"),
			[]string{`app.yaml:6: strategy.blueGreen.preview: must be host:port, like 127.0.0.1:8080, got "nope"`}},
		{"preview same as listen", doc("strategy:", "  blueGreen:", "    preview: localhost:8080"),
			[]string{"app.yaml:7: strategy.blueGreen.preview: must differ from listen (127.0.0.1:8080): the new revision answers here before promotion"}},
		{"canary without steps", doc("strategy:", "  canary: {}"),
			[]string{"app.yaml:6: strategy.canary.steps: at least one step is required, like - setWeight: 10"}},
		{"canary step fields", doc("strategy:", "  canary:", "    steps:", "      - {}", "      - {setWeight: 10, pause: {}}"),
			[]string{
				"app.yaml:8: strategy.canary.steps[0]: set one of setWeight, analyze and pause",
				"app.yaml:9: strategy.canary.steps[1]: set only one of setWeight, analyze and pause in a step; got setWeight and pause",
			}},
		{"canary weights", doc("strategy:", "  canary:", "    steps:", "      - setWeight: 20", "      - pause: {for: 1m}", "      - setWeight: 20", "      - setWeight: 101", "      - setWeight: 10", "      - setWeight: 100"),
			[]string{
				"app.yaml:10: strategy.canary.steps[2].setWeight: must be greater than 20, the weight set by steps[0]; weights only go up",
				"app.yaml:11: strategy.canary.steps[3].setWeight: must be between 0 and 100, got 101",
				"app.yaml:12: strategy.canary.steps[4].setWeight: must be greater than 20, the weight set by steps[0]; weights only go up",
			}},
		{"canary analyze and pause", doc("strategy:", "  canary:", "    steps:", "      - analyze: {for: 0s}", "      - analyze:", "          for: 1m", "          maxWait: 30s", "      - pause: {for: -1s}", "      - pause:"),
			[]string{
				"app.yaml:8: strategy.canary.steps[0].analyze.for: must be a duration greater than 0, got 0s",
				"app.yaml:11: strategy.canary.steps[1].analyze.maxWait: must be at least for (1m0s), got 30s",
				"app.yaml:12: strategy.canary.steps[2].pause.for: must not be negative, got -1s",
			}},
		{"rolling both zero", doc("strategy:", "  rolling: {maxSurge: 0, maxUnavailable: 0%}"),
			[]string{"app.yaml:6: strategy.rolling: maxSurge and maxUnavailable cannot both be 0: no replica could ever be replaced"}},
		{"rolling ranges", doc("strategy:", "  rolling:", "    maxSurge: 150%", "    maxUnavailable: 300"),
			[]string{
				"app.yaml:7: strategy.rolling.maxSurge: must be between 0% and 100%, got 150%",
				"app.yaml:8: strategy.rolling.maxUnavailable: must be between 0 and 256, got 300",
			}},
		{"rolling in place", doc("strategy:", "  rolling: {maxSurge: 0, maxUnavailable: 25%}"), nil},
		{"analysis interval", doc("analysis:", "  interval: 0s"),
			[]string{"app.yaml:6: analysis.interval: must be a duration greater than 0, got 0s"}},
		{"analysis router interval", doc("analysis:", "  routerInterval: 0s"),
			[]string{"app.yaml:6: analysis.routerInterval: must be a duration greater than 0, got 0s"}},
		{"check names", doc("analysis:", "  checks:", "    - logs: {match: x}", "    - name: a", "      logs: {match: x}", "    - name: a", "      logs: {match: y}"),
			[]string{
				"app.yaml:7: analysis.checks[0].name: is required",
				`app.yaml:10: analysis.checks[2].name: "a" is already the name of checks[1]`,
			}},
		{"check sources", doc("analysis:", "  checks:", "    - name: none", "    - name: two", "      logs: {match: x}", "      resources: {maxFDs: 10}"),
			[]string{
				"app.yaml:7: analysis.checks[0]: set one of compare, threshold, prometheus, logs, resources, webhook and journey",
				"app.yaml:8: analysis.checks[1]: set only one of compare, threshold, prometheus, logs, resources, webhook and journey in a check; got logs and resources",
			}},
		{"compare", doc("analysis:", "  checks:", "    - name: a", "      compare: {metric: cpu, maxIncrease: 1}", "    - name: b", "      compare: {metric: errorRate}", "    - name: c", "      compare: {metric: errorRate, maxIncrease: 50ms}", "    - name: d", "      compare: {metric: latencyP99, maxIncrease: 0.1}", "    - name: e", "      compare: {metric: latencyP50, maxIncrease: -1ms}", "    - name: f", "      compare: {metric: requestRate, maxIncrease: 20}"),
			[]string{
				`app.yaml:8: analysis.checks[0].compare.metric: must be one of errorRate, latencyP50, latencyP90, latencyP99, latencyP999, requestRate, statusMix, evalScore, taskErrorRate, tokensPerTask, toolCallsPerTask, toolErrorRate, traceShape, truncationRate, got "cpu"`,
				"app.yaml:10: analysis.checks[1].compare.maxIncrease: is required: how much worse than stable the new revision may be",
				`app.yaml:12: analysis.checks[2].compare.maxIncrease: errorRate is a number: expected a number like 0.01, got "50ms"`,
				`app.yaml:14: analysis.checks[3].compare.maxIncrease: latencyP99 is a latency: expected a duration like "50ms", got "0.1"`,
				"app.yaml:16: analysis.checks[4].compare.maxIncrease: must not be negative, got -1ms",
			}},
		{"agent tolerances", doc("analysis:", "  checks:",
			"    - {name: a, compare: {metric: tokensPerTask, maxIncrease: 20%}}",
			"    - {name: b, compare: {metric: toolErrorRate, maxIncrease: twenty%}}",
			"    - {name: c, compare: {metric: errorRate, maxIncrease: 20%}}",
			"    - {name: d, compare: {metric: toolCallsPerTask, maxIncrease: -5%}}",
			"    - {name: e, compare: {metric: evalScore, name: helpfulness, maxDecrease: 5%}}",
			"    - {name: f, compare: {metric: evalScore, maxIncrease: 0.1}}",
			"    - {name: g, compare: {metric: evalScore, name: q, maxDecrease: 100%}}",
			"    - {name: h, compare: {metric: taskErrorRate, maxIncrease: 0.01, maxDecrease: 0.01}}",
			"    - {name: i, compare: {metric: traceShape}}",
			"    - {name: j, compare: {metric: traceShape, maxIncrease: 10%}}",
			"    - {name: k, compare: {metric: evalScore, name: q, maxDecrease: 0.05}}"),
			[]string{
				`app.yaml:8: analysis.checks[1].compare.maxIncrease: a relative tolerance is a number of percent, like 20%, got "twenty%"`,
				`app.yaml:9: analysis.checks[2].compare.maxIncrease: a relative tolerance like 20% is for the agent metrics taskErrorRate, tokensPerTask, toolCallsPerTask, toolErrorRate and truncationRate; errorRate takes a number like 0.01, got "20%"`,
				"app.yaml:10: analysis.checks[3].compare.maxIncrease: must not be negative, got -5%",
				"app.yaml:12: analysis.checks[5].compare.name: is required for evalScore: the gen_ai.evaluation.name to compare, like helpfulness",
				"app.yaml:12: analysis.checks[5].compare.maxIncrease: evalScore is judged on how far it falls: set maxDecrease, not maxIncrease",
				"app.yaml:12: analysis.checks[5].compare.maxDecrease: is required for evalScore: how much lower than stable's the canary's score may be, like 0.05 or 5%",
				"app.yaml:13: analysis.checks[6].compare.maxDecrease: a relative decrease must be below 100%, got 100%",
				"app.yaml:14: analysis.checks[7].compare.maxDecrease: is only for evalScore; taskErrorRate is judged on maxIncrease",
				`app.yaml:16: analysis.checks[9].compare.maxIncrease: a relative tolerance like 20% is for the agent metrics taskErrorRate, tokensPerTask, toolCallsPerTask, toolErrorRate and truncationRate; traceShape takes a distance between 0 and 1 like 0.1, got "10%"`,
			}},
		{"threshold", doc("analysis:", "  checks:", "    - name: a", "      threshold: {metric: errorRate}", "    - name: b", "      threshold:", "        metric: errorRate", "        max: 2", "        min: -1"),
			[]string{
				"app.yaml:8: analysis.checks[0].threshold: set max, min or both",
				"app.yaml:12: analysis.checks[1].threshold.max: errorRate is a fraction of requests between 0 and 1, got 2",
				"app.yaml:13: analysis.checks[1].threshold.min: must not be negative, got -1",
			}},
		{"prometheus", doc("analysis:", "  checks:", "    - name: a", "      prometheus:", "        address: ftp://127.0.0.1:9090", "        query: ' '", "    - name: b", "      prometheus: {address: 'https://prom.example', query: up}", "      passIf: result == 1"),
			[]string{
				"app.yaml:7: analysis.checks[0]: a prometheus check needs failIf or passIf, an expression over result like \"result > 0.1\"",
				`app.yaml:9: analysis.checks[0].prometheus.address: must be an http:// or https:// URL, like http://127.0.0.1:9090, got "ftp://127.0.0.1:9090"`,
				"app.yaml:10: analysis.checks[0].prometheus.query: is required: a PromQL query",
			}},
		{"failIf only with prometheus", doc("analysis:", "  checks:", "    - name: a", "      logs: {match: panic}", "      failIf: result > 1", "      passIf: result < 1"),
			[]string{
				"app.yaml:9: analysis.checks[0].failIf: is only allowed with prometheus",
				"app.yaml:10: analysis.checks[0].passIf: is only allowed with prometheus",
			}},
		{"logs", doc("analysis:", "  checks:", "    - name: a", "      logs: {match: 'ok|(panic', max: -1}", "    - name: b", "      logs: {max: 1}"),
			[]string{
				`app.yaml:8: analysis.checks[0].logs.match: invalid regular expression at character 4: missing closing ): "(panic"`,
				"app.yaml:8: analysis.checks[0].logs.max: must not be negative, got -1",
				"app.yaml:10: analysis.checks[1].logs.match: is required: a regular expression for the lines to count",
			}},
		{"regexp positions", doc("analysis:", "  checks:", "    - {name: a, logs: {match: 'x(a)b)'}}", "    - {name: b, logs: {match: 'ä[b'}}", "    - {name: c, logs: {match: 'a**'}}", "    - {name: d, logs: {match: '[(]\\)'}}"),
			[]string{
				`app.yaml:7: analysis.checks[0].logs.match: invalid regular expression at character 6: unexpected ): ")"`,
				`app.yaml:8: analysis.checks[1].logs.match: invalid regular expression at character 2: missing closing ]: "[b"`,
				`app.yaml:9: analysis.checks[2].logs.match: invalid regular expression at character 2: invalid nested repetition operator: "**"`,
			}},
		{"resources", doc("analysis:", "  checks:", "    - name: a", "      resources: {}", "    - name: b", "      resources: {maxCPU: -0.5}"),
			[]string{
				"app.yaml:8: analysis.checks[0].resources: set at least one of maxRSS, maxCPU and maxFDs",
				"app.yaml:10: analysis.checks[1].resources.maxCPU: must be a number of cores, 0 or more, got -0.5",
			}},
		{"rollback", doc("rollback:", "  progressDeadline: 0s", "  window: -1s", "  onNoData: ignore"),
			[]string{
				"app.yaml:6: rollback.progressDeadline: must be a duration greater than 0, got 0s",
				"app.yaml:7: rollback.window: must not be negative, got -1s",
				`app.yaml:8: rollback.onNoData: must be wait, pass or fail, got "ignore"`,
			}},
		{"rollback window off", doc("rollback: {window: 0s, onNoData: fail}"), nil},
		{"history low", doc("history: 0"), []string{"app.yaml:5: history: must be between 1 and 1000, got 0"}},
		{"history high", doc("history: 1001"), []string{"app.yaml:5: history: must be between 1 and 1000, got 1001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

// TestManyProblemsAtOnce: every problem is reported in one go, in line
// order, and a value that failed to decode does not also fail validation.
func TestManyProblemsAtOnce(t *testing.T) {
	src := `name: Web
replicas: two
run:
  command: [./web]
  env: {PORT: "1"}
strategy:
  canary:
    steps:
      - setWeight: 50
      - setWieght: 60
      - setWeight: 40
history: 5000
`
	checkProblems(t, src, []string{
		`app.yaml:1: name: must be lowercase letters, digits and '-', starting and ending with a letter or digit, got "Web"`,
		"app.yaml:1: listen: is required for the local engine: the address where lastgood serves this app, like 127.0.0.1:8080",
		`app.yaml:2: replicas: expected an integer, got string "two"`,
		"app.yaml:5: run.env.PORT: is set by lastgood for every replica (PORT, LASTGOOD_APP, LASTGOOD_REVISION); choose another name",
		`app.yaml:10: strategy.canary.steps[1].setWieght: unknown field; did you mean "setWeight"?`,
		"app.yaml:11: strategy.canary.steps[2].setWeight: must be greater than 50, the weight set by steps[0]; weights only go up",
		"app.yaml:12: history: must be between 1 and 1000, got 5000",
	})
}

func TestFieldErrorParts(t *testing.T) {
	_, err := Parse("app.yaml", []byte(doc("replicas: -3", "history:   0")))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(*FieldError) failed on %v", err)
	}
	want := FieldError{File: "app.yaml", Line: 5, Column: 1, Field: "replicas", Message: "must be between 1 and 256, got -3"}
	if *fe != want {
		t.Errorf("first problem = %+v, want %+v", *fe, want)
	}
	if got := err.(Errors).Unwrap(); len(got) != 2 || !errors.Is(got[1], ErrInvalid) {
		t.Errorf("Unwrap = %v", got)
	}
	if got := err.Error(); got != "app.yaml:5: replicas: must be between 1 and 256, got -3\napp.yaml:6: history: must be between 1 and 1000, got 0" {
		t.Errorf("Error() = %q", got)
	}
	noFile := &FieldError{Line: 3, Field: "name", Message: "is required"}
	if got := noFile.Error(); got != "line 3: name: is required" {
		t.Errorf("Error() without a file = %q", got)
	}
}
