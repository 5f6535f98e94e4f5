// Package redact is lastgood's one set of rules for hiding secrets in what
// it shows: incident bundles, API answers (and so the CLI), the event log,
// notifications and its own log. Name tells keys that hold secrets, Text
// hides secrets in free text, JSON in JSON, Handler in slog records;
// Rules lists the rules with examples, as docs/redaction.md does. What
// lastgood stores to run (a revision's real env values) is never passed
// through it.
package redact

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Marker replaces every secret lastgood shows.
const Marker = "[redacted]"

// Changed is shown, in a diff, as the new value of a secret that changed.
const Changed = "[redacted: changed]"

// span is a byte range [start, end) of text to hide.
type span struct{ start, end int }

// A shape finds secrets by how they look, wherever they stand.
type shape struct {
	re *regexp.Regexp
	// group is the submatch that is the secret; 0 for the whole match.
	group int
	// keep, when set, lets a match stand (it is not a secret after all).
	keep func(s string, m []int) bool
	// hint is text every match holds (lower-case: the text is searched
	// lower-cased), so most texts skip the regexp.
	hint string
}

var shapes = []shape{
	// PEM private key blocks, to their END line or the end of the text.
	{hint: "-----begin", re: regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)`)},
	// The password of a URL's userinfo: scheme://user:password@host. The
	// user name stays; the userinfo ends at the last @ before the path.
	{hint: "://", re: regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.\-]*://[^\s/?#@"'<>:]*:([^\s/?#"'<>]*)@`), group: 1},
	// HTTP credentials after an auth scheme, at any length: anything after
	// Bearer, and after Basic what is base64 of "user:password".
	{hint: "bearer", re: regexp.MustCompile(`(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]+=*)`), group: 1,
		keep: func(s string, m []int) bool { return strings.EqualFold(strings.TrimRight(s[m[2]:m[3]], "="), "realm") }},
	{hint: "basic", re: regexp.MustCompile(`(?i)\bbasic[ \t]+([A-Za-z0-9+/]+=*)`), group: 1,
		keep: func(s string, m []int) bool { return !basicCredential(s[m[2]:m[3]]) }},
	// Vendor keys and tokens by their prefix.
	{hint: "k", re: regexp.MustCompile(`\b(?:sk|rk|pk)[-_](?:live|test|proj|ant|svcacct)[-_][A-Za-z0-9_\-]{4,}`)}, // Stripe, OpenAI, Anthropic
	{hint: "sk-", re: regexp.MustCompile(`\bsk-[A-Za-z0-9_\-]{16,}`)},                                             // OpenAI and alike
	{hint: "gh", re: regexp.MustCompile(`\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}`)},                            // GitHub tokens
	{hint: "github_pat_", re: regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{20,}`)},                               // GitHub fine-grained tokens
	{hint: "xox", re: regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9\-]{8,}`)},                                      // Slack tokens
	{hint: "a", re: regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},                                          // AWS access key ids
	{hint: "aiza", re: regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}`)},                                            // Google API keys
	{hint: "eyj", re: regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*`)},         // JWTs
}

// basicCredential reports whether b is base64 of printable "user:password".
func basicCredential(b string) bool {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b, "="))
	if err != nil || !utf8.Valid(raw) || !bytes.ContainsRune(raw, ':') {
		return false
	}
	for _, r := range string(raw) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Text hides what looks like a secret in free text — log lines, event
// messages, reasons, YAML, JSON written as text, unified diffs — and
// returns the rest as it was. Each secret becomes Marker; sha256 digests,
// ordinary words, paths and numbers stay. Text is idempotent:
// Text(Text(s)) == Text(s).
func Text(s string) string { return fixpoint(s, false) }

// TextKeepLines is Text that keeps every line: a secret spanning lines (a
// private key block) becomes one Marker per line, so line i of the result
// is line i of s, redacted. Diffs use it to show changed lines.
func TextKeepLines(s string) string { return fixpoint(s, true) }

// fixpoint applies the rules until nothing more changes, so that a
// replacement can never leave something a second pass would find.
func fixpoint(s string, keepLines bool) string {
	for range 4 {
		t := once(s, keepLines)
		if t == s {
			return t
		}
		s = t
	}
	return s
}

func once(s string, keepLines bool) string {
	var found []span
	lower := strings.ToLower(s)
	for _, sh := range shapes {
		if !strings.Contains(lower, sh.hint) {
			continue
		}
		for _, m := range sh.re.FindAllStringSubmatchIndex(s, -1) {
			if sh.keep != nil && sh.keep(s, m) {
				continue
			}
			a, b := m[2*sh.group], m[2*sh.group+1]
			if a >= 0 && b > a {
				found = append(found, span{a, b})
			}
		}
	}
	if strings.ContainsAny(s, "=:") {
		found = append(found, assignments(s)...)
	}
	if len(s) >= 20 {
		found = append(found, longRuns(s)...)
	}
	return replace(s, found, keepLines)
}

// replace hides the spans, merging those that overlap or touch, so every
// byte any rule found is hidden whatever the order of the rules.
func replace(s string, spans []span, keepLines bool) string {
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].start <= cur.end; i++ {
			cur.end = max(cur.end, spans[i].end)
		}
		if cur.start < last { // inside a span already written
			cur.start = last
		}
		b.WriteString(s[last:cur.start])
		hidden := s[cur.start:cur.end]
		if keepLines && strings.Contains(hidden, "\n") {
			for j, p := range strings.Split(hidden, "\n") {
				if j > 0 {
					b.WriteByte('\n')
				}
				if strings.TrimSpace(p) == "" {
					b.WriteString(p) // white space is no secret, and keeps the line
				} else {
					b.WriteString(p[:len(p)-len(strings.TrimLeft(p, " \t"))]) // the line's indentation
					b.WriteString(Marker)
				}
			}
		} else if hidden != Marker {
			b.WriteString(Marker)
		} else {
			b.WriteString(hidden)
		}
		last = cur.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// longRun matches runs that may be keys or tokens; tokenLike decides.
var longRun = regexp.MustCompile(`[A-Za-z0-9+/_=.\-]{32,}`)

// longRuns finds, in long base64-like runs, the pieces that read like
// keys or tokens (a secret of a shape no other rule names), keeping hex
// (digests, trace ids, commit hashes), paths and identifiers made of
// words: a piece between / . - _ of at least 20 characters with upper-
// and lower-case letters and digits mixed in (digits and letters change
// places at least 3 times: TestHistory2024 or a name with a number at its
// end is no token).
func longRuns(s string) []span {
	var out []span
	for _, l := range longRun.FindAllStringIndex(s, -1) {
		start := l[0]
		for i := l[0]; i <= l[1]; i++ {
			if i < l[1] && !strings.ContainsRune("/.-_", rune(s[i])) {
				continue
			}
			if tokenLike(s[start:i]) {
				out = append(out, span{start, i})
			}
			start = i + 1
		}
	}
	return out
}

func tokenLike(piece string) bool {
	if len(piece) < 20 {
		return false
	}
	var upper, lower bool
	switches, wasDigit := 0, false // changes between digits and letters
	for i, r := range piece {
		digit := r >= '0' && r <= '9'
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		}
		if i > 0 && digit != wasDigit {
			switches++
		}
		wasDigit = digit
	}
	return upper && lower && switches >= 3
}
