package manifest

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	old := doc(
		"  env: {A: one, B: two}",
		"replicas: 2",
		"strategy:",
		"  canary:",
		"    steps:",
		"      - setWeight: 10",
		"      - analyze: {for: 30s}",
		"      - setWeight: 50",
		"analysis:",
		"  checks:",
		"    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}",
		"    - {name: panics, logs: {match: panic}}",
	)
	tests := []struct {
		name string
		new  string
		want []Change
	}{
		{"same", old, nil},
		{"reformatted", `{name: web, listen: "127.0.0.1:8080", replicas: 2,
run: {command: [./web], env: {B: two, A: one}},
strategy: {canary: {steps: [{setWeight: 10}, {analyze: {for: 30s, maxWait: 90s}}, {setWeight: 50}]}},
analysis: {interval: 1s, routerInterval: 100ms, checks: [
  {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}},
  {name: panics, logs: {match: panic, max: 0}}]},
history: 10}`, nil},
		{"changed", doc(
			"  env: {A: uno, C: three}",
			"replicas: 3",
			"strategy:",
			"  canary:",
			"    steps:",
			"      - setWeight: 20",
			"      - pause: {}",
			"      - setWeight: 50",
			"      - setWeight: 80",
			"analysis:",
			"  checks:",
			"    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.02}}",
		), []Change{
			{"replicas", "2", "3"},
			{"run.env.A", "one", "uno"},
			{"run.env.B", "two", ""},
			{"run.env.C", "", "three"},
			{"strategy.canary.steps[0].setWeight", "10", "20"},
			{"strategy.canary.steps[1].analyze", `{"for":"30s","maxWait":"1m30s"}`, ""},
			{"strategy.canary.steps[1].pause", "", "{}"},
			{"strategy.canary.steps[3]", "", `{"setWeight":80}`},
			{"analysis.checks[0].compare.maxIncrease", "0.01", "0.02"},
			{"analysis.checks[1]", `{"name":"panics","logs":{"match":"panic","max":0}}`, ""},
		}},
		{"strategy switched", doc("  env: {A: one, B: two}", "replicas: 2", "strategy: {rolling: {maxSurge: 25%}}",
			"analysis:",
			"  interval: 2s",
			"  routerInterval: 50ms",
			"  checks:",
			"    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}",
			"    - {name: panics, logs: {match: panic}}",
			"history: 20",
		), []Change{
			{"strategy.canary", `{"steps":[{"setWeight":10},{"analyze":{"for":"30s","maxWait":"1m30s"}},{"setWeight":50}]}`, ""},
			{"strategy.rolling", "", `{"maxSurge":"25%","maxUnavailable":0}`},
			{"analysis.interval", "1s", "2s"},
			{"analysis.routerInterval", "100ms", "50ms"},
			{"rollback.holdback", "10%", "0%"}, // a rolling rollout keeps nothing warm to hold back on
			{"history", "10", "20"},
		}},
	}
	a := mustParse(t, old)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustParse(t, tt.new)
			if got := Diff(a, b); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff =\n%v\nwant\n%v", got, tt.want)
			}
			// Reversed, every change swaps Old and New.
			var back []Change
			for _, c := range tt.want {
				back = append(back, Change{c.Field, c.New, c.Old})
			}
			if got := Diff(b, a); !reflect.DeepEqual(got, back) {
				t.Errorf("Diff reversed =\n%v\nwant\n%v", got, back)
			}
		})
	}
}

func TestDiffFromNothing(t *testing.T) {
	app := mustParse(t, base)
	changes := Diff(nil, app)
	byField := map[string]Change{}
	for _, c := range changes {
		byField[c.Field] = c
	}
	for _, want := range []Change{
		{"name", "", "web"},
		{"replicas", "0", "1"},
		{"run", "", `{"command":["./web"]}`},
		{"probes.readiness", "", `{"tcp":true,"period":"1s","timeout":"1s","failureThreshold":3,"successThreshold":1}`},
		{"strategy.rolling", "", `{"maxSurge":1,"maxUnavailable":0}`},
		{"rollback.window", "0s", "10m0s"},
		{"rollback.onNoData", "", "wait"},
	} {
		if got := byField[want.Field]; got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}
