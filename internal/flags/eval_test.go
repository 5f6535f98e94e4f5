package flags

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func checkout() Flag {
	return Flag{
		Key:      "new-checkout",
		Variants: map[string]json.RawMessage{"on": json.RawMessage(`true`), "off": json.RawMessage(`false`)},
		Default:  "off",
	}
}

// TestBucketVectors pins the hash: docs/flags.md lists these same vectors
// for other implementations to check themselves against.
func TestBucketVectors(t *testing.T) {
	for _, tc := range []struct {
		app, key, tk string
		want         int
	}{
		{"web", "new-checkout", "user-1", 61},
		{"web", "new-checkout", "user-2", 8398},
		{"web", "new-checkout", "", 9411},
		{"shop", "new-checkout", "user-1", 2904},
	} {
		if got := Bucket(tc.app, tc.key, tc.tk); got != tc.want {
			t.Errorf("Bucket(%q, %q, %q) = %d, want %d", tc.app, tc.key, tc.tk, got, tc.want)
		}
	}
}

// TestBucketSpread checks that the buckets spread keys evenly enough for a
// 10% split to give about 10% (10,000 keys: within 1.5 points).
func TestBucketSpread(t *testing.T) {
	under := 0
	for i := range 10000 {
		if Bucket("web", "new-checkout", fmt.Sprintf("user-%d", i)) < 1000 {
			under++
		}
	}
	if under < 850 || under > 1150 {
		t.Errorf("%d of 10000 keys fell in the first 10%% of buckets", under)
	}
}

func TestEvaluate(t *testing.T) {
	rules := checkout()
	rules.Rules = []Rule{{If: `country == "NL"`, Variant: "on"}, {If: `user.plan in ["free"]`, Variant: "off"}}
	split := checkout()
	split.Split = map[string]int{"on": 30, "off": 70}
	rollout := checkout()
	rollout.Rollout = &Rollout{Variant: "on", Steps: []int{5, 25, 100}}
	str := Flag{Key: "banner", Variants: map[string]json.RawMessage{"a": json.RawMessage(`"hello"`), "b": json.RawMessage(`"hi"`)}, Default: "a"}

	// A key in the first 5% of buckets, and one in the last 30% (the split gives off, sorted first, 70%).
	low, high := "", ""
	for i := 0; low == "" || high == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		switch b := Bucket("web", "new-checkout", k); {
		case b < 500 && low == "":
			low = k
		case b >= 7000 && high == "":
			high = k
		}
	}
	for _, tc := range []struct {
		name    string
		spec    Spec
		ctx     map[string]any
		variant string
		reason  Reason
		code    ErrorCode
	}{
		{"static", Spec{Flag: checkout()}, nil, "off", Static, ""},
		{"string static", Spec{Flag: str}, nil, "a", Static, ""},
		{"off", Spec{Flag: rules, Off: true}, map[string]any{"country": "NL"}, "off", Disabled, ""},
		{"off beats pin", Spec{Flag: rules, Off: true, Pin: "on"}, nil, "off", Disabled, ""},
		{"pin", Spec{Flag: rules, Pin: "on"}, nil, "on", Static, ""},
		{"rule 1", Spec{Flag: rules}, map[string]any{"country": "NL"}, "on", TargetingMatch, ""},
		{"rule 2", Spec{Flag: rules}, map[string]any{"user": map[string]any{"plan": "free"}}, "off", TargetingMatch, ""},
		{"first rule wins", Spec{Flag: rules}, map[string]any{"country": "NL", "user": map[string]any{"plan": "free"}}, "on", TargetingMatch, ""},
		{"no rule", Spec{Flag: rules}, map[string]any{"country": "DE"}, "off", Default, ""},
		{"no context", Spec{Flag: rules}, nil, "off", Default, ""},
		{"split low", Spec{Flag: split}, map[string]any{"targetingKey": low}, "off", Split, ""},
		{"split high", Spec{Flag: split}, map[string]any{"targetingKey": high}, "on", Split, ""},
		{"split no key", Spec{Flag: split}, map[string]any{}, "off", Error, TargetingKeyMissing},
		{"split key not a string", Spec{Flag: split}, map[string]any{"targetingKey": 3.0}, "off", Error, TargetingKeyMissing},
		{"rollout not started", Spec{Flag: rollout}, map[string]any{"targetingKey": low}, "off", Static, ""},
		{"rollout not started, no key", Spec{Flag: rollout}, nil, "off", Static, ""},
		{"rollout 5% low", Spec{Flag: rollout, Step: 1}, map[string]any{"targetingKey": low}, "on", Split, ""},
		{"rollout 5% high", Spec{Flag: rollout, Step: 1}, map[string]any{"targetingKey": high}, "off", Split, ""},
		{"rollout 100%", Spec{Flag: rollout, Step: 3}, map[string]any{"targetingKey": high}, "on", Split, ""},
		{"rollout no key", Spec{Flag: rollout, Step: 1}, nil, "off", Error, TargetingKeyMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Evaluate("web", &tc.spec, tc.ctx)
			if res.Variant != tc.variant || res.Reason != tc.reason || res.ErrorCode != tc.code {
				t.Fatalf("got %s/%s/%s, want %s/%s/%s", res.Variant, res.Reason, res.ErrorCode, tc.variant, tc.reason, tc.code)
			}
			if string(res.Value) != string(tc.spec.Flag.Variants[tc.variant]) {
				t.Errorf("value %s, want %s", res.Value, tc.spec.Flag.Variants[tc.variant])
			}
			if tc.code != "" && res.ErrorMessage == "" {
				t.Error("an error without a message")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(f *Flag)
		want   []string // "field: part of the message"
	}{
		{"good", func(f *Flag) {}, nil},
		{"no key", func(f *Flag) { f.Key = "" }, []string{"key: is required"}},
		{"bad key", func(f *Flag) { f.Key = "a b" }, []string{"key: must be letters"}},
		{"unknown default", func(f *Flag) { f.Default = "maybe" }, []string{`default: default "maybe" is not one of the variants (off, on)`}},
		{"no variants", func(f *Flag) { f.Variants = nil; f.Default = "" }, []string{"variants: is required", "default: is required"}},
		{"mixed types", func(f *Flag) { f.Variants["on"] = json.RawMessage(`"yes"`) }, []string{"variants.on: is a string, but variant off is a boolean"}},
		{"null value", func(f *Flag) { f.Variants["on"] = json.RawMessage(`null`) }, []string{"variants.on: needs a value"}},
		{"bad rule", func(f *Flag) { f.Rules = []Rule{{If: `user..plan == "x"`, Variant: "on"}} }, []string{"rules[0].if: has a malformed attribute path"}},
		{"rule syntax", func(f *Flag) { f.Rules = []Rule{{If: `a = 1`, Variant: "on"}} }, []string{"rules[0].if: is not a valid condition"}},
		{"rule variant", func(f *Flag) { f.Rules = []Rule{{If: `a == 1`, Variant: "x"}} }, []string{`rules[0].variant: variant "x" is not one`}},
		{"split sum", func(f *Flag) { f.Split = map[string]int{"on": 50, "off": 40} }, []string{"split: weights must sum to 100, got 90"}},
		{"split variant", func(f *Flag) { f.Split = map[string]int{"on": 50, "maybe": 50} }, []string{`split.maybe: variant "maybe" is not one`}},
		{"split and rollout", func(f *Flag) {
			f.Split = map[string]int{"on": 100}
			f.Rollout = &Rollout{Variant: "on", Steps: []int{100}}
		}, []string{"split: give split or rollout, not both"}},
		{"rollout steps", func(f *Flag) { f.Rollout = &Rollout{Variant: "on", Steps: []int{5, 5, 101}} }, []string{
			"rollout.steps[1]: must be larger than the step before (5), got 5", "rollout.steps[2]: must be between 1 and 100"}},
		{"rollout default", func(f *Flag) { f.Rollout = &Rollout{Variant: "off", Steps: []int{50}} }, []string{"rollout.variant: is the default variant"}},
		{"rollout analyze", func(f *Flag) { f.Rollout = &Rollout{Variant: "on", Steps: []int{50}, Analyze: &Analyze{}} }, []string{"rollout.analyze.for: must be a duration"}},
		{"targeting both", func(f *Flag) { f.TargetingKey = &TargetingKey{Header: "X-User", Cookie: "u"} }, []string{"targetingKey: give one of header and cookie"}},
		{"targeting header", func(f *Flag) { f.TargetingKey = &TargetingKey{Header: "X User"} }, []string{"targetingKey.header: must be an HTTP header name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := checkout()
			tc.mutate(&f)
			ps := Validate(&f)
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], strings.SplitN(tc.want[i], ": ", 2)[0]+": ") || !strings.Contains(got[i], strings.SplitN(tc.want[i], ": ", 2)[1]) {
					t.Errorf("problem %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzEvaluate checks that evaluation never panics, always returns one of
// the flag's variants with its value, and is deterministic.
func FuzzEvaluate(f *testing.F) {
	f.Add(`{"targetingKey": "u1", "country": "NL"}`, `country == "NL"`, 30, 1, false, "")
	f.Add(`{}`, `a.b in [1, 2]`, 100, 0, true, "on")
	f.Add(`[1]`, `x != true`, 0, 3, false, "off")
	f.Fuzz(func(t *testing.T, ctxJSON, cond string, weight, step int, off bool, pin string) {
		var ctx map[string]any
		_ = json.Unmarshal([]byte(ctxJSON), &ctx)
		fl := checkout()
		fl.Rules = []Rule{{If: cond, Variant: "on"}}
		if weight >= 0 && weight <= 100 {
			fl.Split = map[string]int{"on": weight, "off": 100 - weight}
		} else {
			fl.Rollout = &Rollout{Variant: "on", Steps: []int{5, 50, 100}}
		}
		if len(Validate(&fl)) > 0 {
			fl.Rules = nil
		}
		if pin != "" && fl.Variants[pin] == nil {
			pin = ""
		}
		s := &Spec{Flag: fl, Off: off, Pin: pin, Step: step}
		a, b := Evaluate("web", s, ctx), Evaluate("web", s, ctx)
		if a.Variant != b.Variant || a.Reason != b.Reason {
			t.Fatalf("not deterministic: %+v then %+v", a, b)
		}
		if fl.Variants[a.Variant] == nil || string(a.Value) != string(fl.Variants[a.Variant]) {
			t.Fatalf("variant %q with value %s is not the flag's", a.Variant, a.Value)
		}
		if off && (a.Variant != "off" || a.Reason != Disabled) {
			t.Fatalf("off: got %+v", a)
		}
	})
}
