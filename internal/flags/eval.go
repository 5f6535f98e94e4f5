package flags

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
)

// Spec is the content of one flag revision: the flag as declared and the
// state the CLI gave it. Its JSON is what the store keeps.
type Spec struct {
	Flag Flag `json:"flag"`
	// Off is the kill switch: every evaluation gets the default variant.
	Off bool `json:"off,omitempty"`
	// Pin, when set, is the variant every evaluation gets (`flags set`).
	Pin string `json:"pin,omitempty"`
	// Step is the rollout's current step, 1-based; 0 before it starts.
	Step int `json:"step,omitempty"`
}

// Reason is why an evaluation resolved as it did, in OpenFeature's words.
type Reason string

// OpenFeature's resolution reasons.
const (
	Static         Reason = "STATIC"          // the flag has no rules, split or rollout, or is pinned
	TargetingMatch Reason = "TARGETING_MATCH" // a rule matched
	Split          Reason = "SPLIT"           // the targeting key's bucket decided
	Default        Reason = "DEFAULT"         // nothing matched: the default variant
	Disabled       Reason = "DISABLED"        // the kill switch is on: the default variant
	Error          Reason = "ERROR"           // see ErrorCode
)

// ErrorCode names why an evaluation failed, in OFREP's words.
type ErrorCode string

// OFREP's error codes that evaluation itself can return.
const (
	TargetingKeyMissing ErrorCode = "TARGETING_KEY_MISSING"
)

// Result is one evaluation.
type Result struct {
	Variant string
	Value   json.RawMessage
	Reason  Reason
	// ErrorCode and ErrorMessage are set when Reason is Error; Variant
	// and Value are then the default's, for clients that fall back.
	ErrorCode    ErrorCode
	ErrorMessage string
}

// Buckets is how many buckets the targeting keys hash into: one bucket is
// 0.01% of keys.
const Buckets = 10000

// Bucket returns the bucket, in [0, Buckets), of a targeting key for the
// flag key of an app:
//
//	h      = SHA-256(app + "/" + key + "\x00" + targetingKey)
//	bucket = (big-endian uint64 of h[0:8]) mod 10000
//
// docs/flags.md gives test vectors, so that other implementations (the
// router, a client) can match it.
func Bucket(app, key, targetingKey string) int {
	h := sha256.New()
	h.Write([]byte(app + "/" + key + "\x00" + targetingKey))
	var sum [sha256.Size]byte
	return int(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % Buckets)
}

// Evaluate resolves a flag revision of an app for an evaluation context
// (as OFREP sends it: targetingKey and any other attributes). In order:
// the kill switch; a pinned variant; the first rule that matches; the
// split or the rollout's current step by the targeting key's bucket; the
// default variant.
func Evaluate(app string, s *Spec, ctx map[string]any) Result {
	return Compile(s).Evaluate(app, ctx)
}

// Compiled is a Spec with its rules parsed, for evaluating many times.
type Compiled struct {
	Spec  *Spec
	rules []*Expr // nil for a rule that does not parse (never stored)
}

// Compile parses the rules of s.
func Compile(s *Spec) *Compiled {
	c := &Compiled{Spec: s, rules: make([]*Expr, len(s.Flag.Rules))}
	for i, r := range s.Flag.Rules {
		c.rules[i], _ = Parse(r.If)
	}
	return c
}

// Evaluate is Evaluate of the compiled Spec.
func (c *Compiled) Evaluate(app string, ctx map[string]any) Result {
	s := c.Spec
	f := &s.Flag
	switch {
	case s.Off:
		return f.result(f.Default, Disabled)
	case s.Pin != "":
		return f.result(s.Pin, Static)
	}
	for i, r := range f.Rules {
		if e := c.rules[i]; e != nil && e.Match(ctx) {
			return f.result(r.Variant, TargetingMatch)
		}
	}
	if s.bucketed() {
		tk, _ := ctx["targetingKey"].(string)
		if tk == "" {
			res := f.result(f.Default, Error)
			res.ErrorCode = TargetingKeyMissing
			res.ErrorMessage = "flag " + f.Key + " splits by targeting key; the context has no targetingKey"
			return res
		}
		return f.result(s.VariantFor(app, tk), Split)
	}
	if len(f.Rules) > 0 {
		return f.result(f.Default, Default)
	}
	return f.result(f.Default, Static)
}

// bucketed reports whether the targeting key decides (a split, or a
// rollout that has started).
func (s *Spec) bucketed() bool {
	f := &s.Flag
	return len(f.Split) > 0 || (f.Rollout != nil && s.Step > 0 && s.Step <= len(f.Rollout.Steps))
}

// VariantFor is the variant that a targeting key's bucket gives, ignoring
// rules: the split's variants take buckets in the order of their names
// (sorted), each as many as its weight times 100; a rollout at a step of
// P percent gives its variant to buckets below P*100, the default to the
// others. Without a split or a started rollout it is the default. This is
// the one function the router's cohort attribution is meant to share
// with OFREP.
func (s *Spec) VariantFor(app, targetingKey string) string {
	f := &s.Flag
	switch {
	case s.Off:
		return f.Default
	case s.Pin != "":
		return s.Pin
	case !s.bucketed():
		return f.Default
	}
	b := Bucket(app, f.Key, targetingKey)
	if len(f.Split) > 0 {
		upto := 0
		for _, name := range slices.Sorted(maps.Keys(f.Split)) {
			upto += f.Split[name] * (Buckets / 100)
			if b < upto {
				return name
			}
		}
		return f.Default // weights sum to 100: not reached
	}
	if b < f.Rollout.Steps[s.Step-1]*(Buckets/100) {
		return f.Rollout.Variant
	}
	return f.Default
}

func (f *Flag) result(variant string, reason Reason) Result {
	return Result{Variant: variant, Value: f.Variants[variant], Reason: reason}
}
