package manifest

import (
	"slices"
	"strings"
	"testing"
)

func TestHarmChecksValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"good", doc("analysis:", "  checks:",
			"    - name: a",
			"      compare: {metric: errorRate, maxIncrease: 0.01, errors: {status: [5xx, 404, 429]}}",
			"    - name: b",
			"      compare: {metric: statusMix, maxIncrease: 0.02, perRoute: true}",
			"    - name: c",
			"      compare: {latencyQuantile: 0.999, maxIncrease: 20ms}",
			"    - name: d",
			"      compare: {metric: latencyP999, maxIncrease: 20ms, perRoute: true}",
			"    - name: e",
			"      threshold: {metric: errorRate, max: 0.05, errors: {status: [4xx]}}"), nil},
		{"bad", doc("analysis:", "  checks:",
			"    - name: a",
			"      compare: {metric: latencyP99, maxIncrease: 1ms, errors: {status: [5xx]}}",
			"    - name: b",
			"      compare:",
			"        metric: errorRate",
			"        maxIncrease: 0.01",
			"        errors: {status: [5xx, 600, 4x]}",
			"    - name: c",
			"      compare: {latencyQuantile: 1.5, maxIncrease: 20ms}",
			"    - name: d",
			"      compare: {metric: errorRate, latencyQuantile: 0.9, maxIncrease: 20ms}",
			"    - name: e",
			"      compare: {maxIncrease: 0.1}",
			"    - name: f",
			"      compare: {metric: statusMix, maxIncrease: 2}",
			"    - name: g",
			"      compare: {metric: errorRate, maxIncrease: 0.1, errors: {status: []}}",
			"    - name: h",
			"      threshold: {metric: statusMix, max: 0.1}"),
			[]string{
				`app.yaml:8: analysis.checks[0].compare.errors: is only allowed with metric errorRate, got "latencyP99"`,
				`app.yaml:13: analysis.checks[1].compare.errors.status[1]: must be a status class from 1xx to 5xx or a code from 100 to 599, like 5xx or 404, got "600"`,
				`app.yaml:13: analysis.checks[1].compare.errors.status[2]: must be a status class from 1xx to 5xx or a code from 100 to 599, like 5xx or 404, got "4x"`,
				"app.yaml:15: analysis.checks[2].compare.latencyQuantile: must be a quantile between 0 and 1, like 0.999 for p99.9, got 1.5",
				"app.yaml:17: analysis.checks[3].compare: set metric or latencyQuantile, not both",
				"app.yaml:19: analysis.checks[4].compare.metric: is required: errorRate, latencyP50, latencyP90, latencyP99, latencyP999 or statusMix (or latencyQuantile: 0.999 in its place)",
				"app.yaml:21: analysis.checks[5].compare.maxIncrease: statusMix is a fraction of requests between 0 and 1, got 2",
				"app.yaml:23: analysis.checks[6].compare.errors.status: list at least one status class or code, like [5xx, 404, 429]",
				`app.yaml:25: analysis.checks[7].threshold.metric: must be one of errorRate, latencyP50, latencyP90, latencyP99, latencyP999, requestRate, got "statusMix"`,
			}},
		{"per route without routes", doc("router: {routes: 0}", "analysis:", "  checks:", "    - name: a", "      compare: {metric: errorRate, maxIncrease: 0.01, perRoute: true}"),
			[]string{"app.yaml:9: analysis.checks[0].compare.perRoute: needs routes to compare: router.routes is 0"}},
		{"too many routes", doc("router: {routes: 101}"),
			[]string{"app.yaml:5: router.routes: must be between 0 and 100, got 101"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.src)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestDefaultChecks(t *testing.T) {
	names := func(a *App) []string {
		if a.Analysis == nil {
			return nil
		}
		var out []string
		for _, c := range a.Analysis.Checks {
			out = append(out, c.Name)
		}
		return out
	}
	all := []string{"errors", "status-mix", "latency", "routes"}
	canary := doc("strategy:", "  canary: {steps: [{setWeight: 10}]}")
	for _, tc := range []struct {
		name      string
		src       string
		want      []string
		isDefault bool
	}{
		{"canary without analysis", canary, all, true},
		{"blue-green without analysis", doc("strategy:", "  blueGreen: {}"), all, true},
		{"rolling", base, nil, false},
		{"checks turned off", canary + "analysis: {checks: []}\n", nil, false},
		{"default asked for, own alpha", canary + "analysis: {default: true, alpha: 0.05}\n", all, true},
		{"own checks", canary + "analysis:\n  checks: [{name: mine, logs: {match: panic}}]\n", []string{"mine"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := mustParse(t, tc.src)
			if got := names(app); !slices.Equal(got, tc.want) {
				t.Fatalf("checks %v, want %v", got, tc.want)
			}
			if tc.want != nil && app.Analysis.Default != tc.isDefault {
				t.Errorf("analysis.default = %v, want %v", app.Analysis.Default, tc.isDefault)
			}
			again, err := FromJSON(app.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			if string(again.Canonical()) != string(app.Canonical()) {
				t.Errorf("FromJSON(Canonical) changed it:\n%s\n%s", again.Canonical(), app.Canonical())
			}
		})
	}
	app := mustParse(t, canary)
	if app.Analysis.Alpha != defaultAlpha || app.RouteLimit() != DefaultRoutes {
		t.Errorf("alpha %v, routes %d; want %v and %d", app.Analysis.Alpha, app.RouteLimit(), defaultAlpha, DefaultRoutes)
	}
}
