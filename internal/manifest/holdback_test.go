package manifest

import (
	"strings"
	"testing"
)

// compareCheck is an analysis section with one compare check, lines 5–7.
var compareCheck = []string{"analysis:", "  checks:", "    - {name: errors, compare: {metric: errorRate, maxIncrease: 0.01}}"}

func withCompare(lines ...string) string {
	return doc(append(append([]string{}, compareCheck...), lines...)...)
}

func TestHoldbackValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		want []string
	}{
		{"a percentage", withCompare("strategy: {canary: {steps: [{setWeight: 10}]}}", "rollback: {holdback: 2%}"), nil},
		{"zero turns it off", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: 0}"), nil},
		{"zero percent", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: 0%}"), nil},
		{"without a compare check", doc("strategy: {canary: {steps: [{setWeight: 10}]}}", "rollback: {holdback: 3%}"), nil},
		{"a bare number", withCompare("strategy: {blueGreen: {}}", "rollback:", "  holdback: 2"),
			[]string{`app.yaml:10: rollback.holdback: expected a whole percentage of traffic like "2%", or 0, got integer 2`}},
		{"a fraction", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: 0.5%}"),
			[]string{`app.yaml:9: rollback.holdback: expected a whole percentage of traffic like "2%", or 0, got string "0.5%"`}},
		{"too much", withCompare("strategy: {blueGreen: {}}", "rollback:", "  window: 5m", "  holdback: 60%"),
			[]string{"app.yaml:11: rollback.holdback: must be between 0% and 50% of traffic, got 60%"}},
		{"negative", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: -1%}"),
			[]string{"app.yaml:9: rollback.holdback: must be between 0% and 50% of traffic, got -1%"}},
		{"rolling", withCompare("strategy: {rolling: {}}", "rollback: {holdback: 2%}"),
			[]string{"app.yaml:9: rollback.holdback: a rolling rollout replaces replicas and keeps no previous revision warm to hold traffic back on; remove it or use canary or blueGreen"}},
		{"no window", withCompare("strategy: {blueGreen: {}}", "rollback: {window: 0s, holdback: 2%}"),
			[]string{"app.yaml:9: rollback.holdback: needs a rollback window: traffic is held back on the previous revision only while it stays warm (rollback.window is 0)"}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestHoldbackDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		want *Share
	}{
		{"canary with a compare check", withCompare("strategy: {canary: {steps: [{setWeight: 10}]}}"), ptr(DefaultHoldback)},
		{"blue-green with a compare check", withCompare("strategy: {blueGreen: {}}"), ptr(DefaultHoldback)},
		{"written", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: 10%}"), ptr(Share(10))},
		{"written as 0", withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: 0}"), ptr(Share(0))},
		{"rolling keeps nothing warm", withCompare("strategy: {rolling: {}}"), ptr(Share(0))},
		{"no window", withCompare("strategy: {blueGreen: {}}", "rollback: {window: 0s}"), ptr(Share(0))},
		{"no analysis section: the default checks compare", doc("strategy: {canary: {steps: [{setWeight: 10}]}}"), ptr(DefaultHoldback)},
		{"no compare check", doc("strategy: {canary: {steps: [{setWeight: 10}]}}", "analysis: {checks: []}"), nil},
		{"no compare check, 0 written", doc("strategy: {blueGreen: {}}", "rollback: {holdback: 0%}", "analysis: {checks: []}"), nil},
		{"no analysis at all", base, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := mustParse(t, tt.src)
			got := app.Rollback.Holdback
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("rollback.holdback = %v, want %v", show(got), show(tt.want))
			}
			// The canonical form reads back the same, defaults and all.
			back, err := FromJSON(app.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			if string(back.Canonical()) != string(app.Canonical()) {
				t.Fatalf("canonical form does not round-trip:\n%s\n%s", app.Canonical(), back.Canonical())
			}
			if h := app.Rollback.HoldbackPercent(); (got == nil && h != 0) || (got != nil && h != int(*got)) {
				t.Fatalf("HoldbackPercent() = %d for %v", h, show(got))
			}
		})
	}
	// Written as the default or left to it, the content is the same.
	a := mustParse(t, withCompare("strategy: {blueGreen: {}}"))
	b := mustParse(t, withCompare("strategy: {blueGreen: {}}", "rollback: {holdback: "+DefaultHoldback.String()+"}"))
	if string(a.Canonical()) != string(b.Canonical()) || !strings.Contains(string(a.Canonical()), `"holdback":"`+DefaultHoldback.String()+`"`) {
		t.Fatalf("canonical forms:\n%s\n%s", a.Canonical(), b.Canonical())
	}
}

func ptr(s Share) *Share { return &s }

func show(s *Share) string {
	if s == nil {
		return "none"
	}
	return s.String()
}
