package manifest

import (
	"testing"
)

func TestFlagsParse(t *testing.T) {
	app, err := Parse("app.yaml", []byte(doc(
		`flags:`,
		`  - key: new-checkout`,
		`    variants: {on: true, off: false}`,
		`    default: off`,
		`    targetingKey: {header: X-User-Id}`,
		`    rules: [{if: 'country == "NL"', variant: on}]`,
		`    rollout: {variant: on, steps: [5, 25, 100], analyze: {for: 30s}}`,
		`  - key: theme`,
		`    variants: {a: {color: red, sizes: [1, 2]}, b: {color: blue}}`,
		`    default: a`,
		`    split: {a: 50, b: 50}`,
	)))
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Flags) != 2 {
		t.Fatalf("got %d flags", len(app.Flags))
	}
	f := app.Flags[0]
	if string(f.Variants["on"]) != "true" || string(f.Variants["off"]) != "false" || f.Default != "off" ||
		f.TargetingKey.Header != "X-User-Id" || f.Rules[0].If != `country == "NL"` || f.Rollout.Analyze.For.String() != "30s" {
		t.Errorf("flag 0: %+v", f)
	}
	if got := string(app.Flags[1].Variants["a"]); got != `{"color":"red","sizes":[1,2]}` {
		t.Errorf("object variant: %s", got)
	}
	again, err := FromJSON(app.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Canonical()) != string(app.Canonical()) {
		t.Errorf("canonical JSON does not round-trip:\n%s\n%s", app.Canonical(), again.Canonical())
	}
}

func TestFlagsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"unknown default", []string{
			`flags:`,
			`  - key: a`,
			`    variants: {on: true, off: false}`,
			`    default: maybe`,
		}, []string{`app.yaml:8: flags[0].default: default "maybe" is not one of the variants (off, on)`}},
		{"mixed types", []string{
			`flags:`,
			`  - key: a`,
			`    variants:`,
			`      on: true`,
			`      off: "no"`,
			`    default: off`,
		}, []string{`app.yaml:8: flags[0].variants.on: is a boolean, but variant off is a string: every variant of a flag has the same type`}},
		{"malformed path", []string{
			`flags:`,
			`  - key: a`,
			`    variants: {on: true, off: false}`,
			`    default: off`,
			`    rules:`,
			`      - if: 'user..plan == "pro"'`,
			`        variant: on`,
		}, []string{`app.yaml:10: flags[0].rules[0].if: has a malformed attribute path: at offset 5: two dots in a row in an attribute path (in "user..plan == \"pro\"")`}},
		{"weights", []string{
			`flags:`,
			`  - key: a`,
			`    variants: {on: true, off: false}`,
			`    default: off`,
			`    split: {on: 30, off: 60}`,
		}, []string{`app.yaml:9: flags[0].split: weights must sum to 100, got 90`}},
		{"duplicate key", []string{
			`flags:`,
			`  - {key: a, variants: {on: true}, default: on}`,
			`  - {key: a, variants: {on: true}, default: on}`,
		}, []string{`app.yaml:7: flags[1].key: duplicate flag key "a"; first declared at flags[0] (line 6)`}},
		{"unknown field", []string{
			`flags:`,
			`  - {key: a, variants: {on: true}, default: on, defualt: on}`,
		}, []string{`app.yaml:6: flags[0].defualt: unknown field; did you mean "default"?`}},
		{"bad duration", []string{
			`flags:`,
			`  - {key: a, variants: {on: true, off: false}, default: off, rollout: {variant: on, steps: [50], analyze: {for: soon}}}`,
		}, []string{`app.yaml:6: flags[0].rollout.analyze.for: expected a duration like "30s" or "1m30s", got "soon"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, doc(tc.lines...), tc.want)
		})
	}
}
