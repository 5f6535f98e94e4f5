// Package flags is lastgood's feature-flag model: a flag as declared
// (variants with JSON values, a default, targeting rules, a fractional
// split or a stepped rollout), its validation, and its evaluation — a pure
// function of a flag revision and an evaluation context, with OpenFeature's
// reasons. It does no I/O; the store keeps its revisions, internal/ofrep
// serves it.
package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Flag is one feature flag as the manifest (or the API) declares it.
type Flag struct {
	Key string `json:"key"`
	// Variants maps each variant's name to its JSON value. Every value has
	// the same JSON type: boolean, string, number or object (an object or
	// an array).
	Variants map[string]json.RawMessage `json:"variants"`
	// Default is the variant served when nothing else decides, and after
	// the kill switch (`lastgood flags APP off KEY`).
	Default string `json:"default"`
	// TargetingKey says where lastgood's router finds a request's
	// targeting key; OFREP clients send it as context.targetingKey.
	TargetingKey *TargetingKey `json:"targetingKey,omitempty"`
	// Rules are tried in order; the first whose condition holds decides.
	Rules []Rule `json:"rules,omitempty"`
	// Split assigns the targeting keys no rule matched to variants by
	// weight (percent, summing to 100).
	Split map[string]int `json:"split,omitempty"`
	// Rollout moves one variant to a growing share of targeting keys.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// TargetingKey is where a request carries its targeting key: exactly one
// of a header and a cookie.
type TargetingKey struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
}

// Rule serves Variant when If holds.
type Rule struct {
	If      string `json:"if"`
	Variant string `json:"variant"`
}

// Rollout gives Variant to Steps[i] percent of targeting keys at step i,
// the others get the default.
type Rollout struct {
	Variant string   `json:"variant"`
	Steps   []int    `json:"steps"`
	Analyze *Analyze `json:"analyze,omitempty"`
}

// Analyze is how long each rollout step is judged before the next.
type Analyze struct {
	For Duration `json:"for"`
}

// Duration is a Go duration written as a string ("30s").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: expected a string like \"30s\"")
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalText reads a Go duration ("30s", "1m30s").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("expected a duration like \"30s\" or \"1m30s\", got %q", b)
	}
	*d = Duration(v)
	return nil
}

// Type is the JSON type of a flag's values, as OFREP and OpenFeature name
// them.
type Type string

// The types of flag values.
const (
	Boolean Type = "boolean"
	String  Type = "string"
	Number  Type = "number"
	Object  Type = "object"
)

// TypeOf returns the JSON type of a value, "" when it is null or not JSON.
func TypeOf(v json.RawMessage) Type {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || !json.Valid(v) {
		return ""
	}
	switch v[0] {
	case 't', 'f':
		return Boolean
	case '"':
		return String
	case '{', '[':
		return Object
	case 'n':
		return ""
	}
	return Number
}

// Type is the JSON type of the flag's values ("" for a flag without
// variants).
func (f *Flag) Type() Type {
	for _, name := range slices.Sorted(maps.Keys(f.Variants)) {
		return TypeOf(f.Variants[name])
	}
	return ""
}

// Problem is one thing wrong with a flag, at a field path relative to the
// flag (variants.on, rules[0].if).
type Problem struct {
	Field   string
	Message string
}

func (p Problem) Error() string { return p.Field + ": " + p.Message }

var (
	keyPattern    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	headerPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	cookiePattern = headerPattern
)

// Limits of one flag.
const (
	MaxKeyLength = 128
	MaxVariants  = 64
	MaxRules     = 256
	MaxValueSize = 64 << 10
)

// Validate returns every problem with f, or nil.
func Validate(f *Flag) []Problem {
	var ps []Problem
	fail := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	switch {
	case f.Key == "":
		fail("key", "is required")
	case len(f.Key) > MaxKeyLength:
		fail("key", "must be at most %d characters, got %d", MaxKeyLength, len(f.Key))
	case !keyPattern.MatchString(f.Key):
		fail("key", "must be letters, digits, '.', '_' and '-', starting and ending with a letter or digit, got %q", f.Key)
	}
	names := slices.Sorted(maps.Keys(f.Variants))
	switch {
	case len(names) == 0:
		fail("variants", "is required: at least one variant, like {on: true, off: false}")
	case len(names) > MaxVariants:
		fail("variants", "has %d variants; the limit is %d", len(names), MaxVariants)
	}
	var first Type
	var firstName string
	for _, name := range names {
		v := f.Variants[name]
		field := "variants." + name
		if !keyPattern.MatchString(name) {
			fail(field, "a variant's name must be letters, digits, '.', '_' and '-', got %q", name)
		}
		t := TypeOf(v)
		switch {
		case len(v) > MaxValueSize:
			fail(field, "value is %d bytes; the limit is %d", len(v), MaxValueSize)
			continue
		case t == "":
			fail(field, "needs a value: a boolean, string, number or object (null is none)")
			continue
		case first == "":
			first, firstName = t, name
		case t != first:
			fail(field, "is a %s, but variant %s is a %s: every variant of a flag has the same type", t, firstName, first)
		}
	}
	known := func(field, name, what string) {
		switch {
		case name == "":
			fail(field, "is required: the name of a variant (%s)", variantList(names))
		case f.Variants[name] == nil && len(names) > 0:
			fail(field, "%s %q is not one of the variants (%s)", what, name, variantList(names))
		}
	}
	known("default", f.Default, "default")
	if tk := f.TargetingKey; tk != nil {
		switch {
		case tk.Header != "" && tk.Cookie != "":
			fail("targetingKey", "give one of header and cookie, not both")
		case tk.Header != "" && !headerPattern.MatchString(tk.Header):
			fail("targetingKey.header", "must be an HTTP header name, like X-User-Id, got %q", tk.Header)
		case tk.Cookie != "" && !cookiePattern.MatchString(tk.Cookie):
			fail("targetingKey.cookie", "must be a cookie name, got %q", tk.Cookie)
		case tk.Header == "" && tk.Cookie == "":
			fail("targetingKey", "give header: NAME or cookie: NAME")
		}
	}
	if len(f.Rules) > MaxRules {
		fail("rules", "has %d rules; the limit is %d", len(f.Rules), MaxRules)
	}
	for i, r := range f.Rules {
		field := "rules[" + strconv.Itoa(i) + "]"
		if r.If == "" {
			fail(field+".if", "is required: a condition like 'country == \"NL\"'")
		} else if _, err := Parse(r.If); err != nil {
			what := "is not a valid condition"
			if errors.Is(err, ErrAttributePath) {
				what = "has a " + ErrAttributePath.Error()
			}
			fail(field+".if", "%s: %v (in %q)", what, err, r.If)
		}
		known(field+".variant", r.Variant, "variant")
	}
	if f.Split != nil && f.Rollout != nil {
		fail("split", "give split or rollout, not both")
	}
	if f.Split != nil {
		sum := 0
		for _, name := range slices.Sorted(maps.Keys(f.Split)) {
			w := f.Split[name]
			known("split."+name, name, "variant")
			if w < 0 || w > 100 {
				fail("split."+name, "weight must be between 0 and 100, got %d", w)
			}
			sum += w
		}
		if sum != 100 {
			fail("split", "weights must sum to 100, got %d", sum)
		}
	}
	if ro := f.Rollout; ro != nil {
		known("rollout.variant", ro.Variant, "variant")
		if ro.Variant != "" && ro.Variant == f.Default {
			fail("rollout.variant", "is the default variant; a rollout moves keys to another one")
		}
		if len(ro.Steps) == 0 {
			fail("rollout.steps", "is required: the percentages of targeting keys, like [5, 25, 100]")
		}
		for i, s := range ro.Steps {
			field := "rollout.steps[" + strconv.Itoa(i) + "]"
			switch {
			case s < 1 || s > 100:
				fail(field, "must be between 1 and 100, got %d", s)
			case i > 0 && s <= ro.Steps[i-1]:
				fail(field, "must be larger than the step before (%d), got %d", ro.Steps[i-1], s)
			}
		}
		if ro.Analyze != nil && ro.Analyze.For <= 0 {
			fail("rollout.analyze.for", "must be a duration greater than 0, like 30s")
		}
	}
	return ps
}

func variantList(names []string) string {
	if len(names) == 0 {
		return "none declared"
	}
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
