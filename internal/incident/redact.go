package incident

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/lastgood/lastgood/internal/manifest"
)

// Redacted replaces every secret the bundle would otherwise carry.
const Redacted = "[redacted]"

// secretName matches environment variable names whose values are secret.
var secretName = regexp.MustCompile(`(?i)token|secret|passw(or)?d|passphrase|key|credential|auth|private|cookie|session|signature|dsn`)

// SecretName reports whether an env variable named name holds a secret.
func SecretName(name string) bool { return secretName.MatchString(name) }

var (
	privateKey = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`)
	scheme     = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}`)
	awsKey     = regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)
	assignment = regexp.MustCompile(`(?i)\b([A-Za-z0-9_.-]*(?:token|secret|passw(?:or)?d|passphrase|api[_-]?key|access[_-]?key|credential)[A-Za-z0-9_.-]*)(["']?\s*[=:]\s*["']?)[^\s"'&,;]+`)
	longRun    = regexp.MustCompile(`[A-Za-z0-9+/_=.-]{32,}`)
)

// Text removes what looks like a secret from s: private key blocks,
// `Bearer …` credentials, AWS access key ids, values assigned to names like
// password or api_key, and long base64 or hex runs (JWTs, keys, tokens).
// sha256 digests, which name content and are not secret, are kept.
func Text(s string) string {
	s = privateKey.ReplaceAllString(s, Redacted)
	s = scheme.ReplaceAllString(s, "${1}${2}"+Redacted)
	s = awsKey.ReplaceAllString(s, Redacted)
	s = assignment.ReplaceAllStringFunc(s, func(m string) string {
		sub := assignment.FindStringSubmatch(m)
		return sub[1] + sub[2] + Redacted
	})
	return replaceRuns(s)
}

// replaceRuns redacts long token-like runs, keeping sha256 digests and
// things that read like paths or words.
func replaceRuns(s string) string {
	locs := longRun.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		run := s[l[0]:l[1]]
		if !tokenLike(run) || strings.HasSuffix(s[:l[0]], "sha256:") {
			continue
		}
		b.WriteString(s[last:l[0]])
		b.WriteString(Redacted)
		last = l[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// tokenLike tells a key or token from a long path or identifier: it has
// digits and letters, and either is all hex or mixes upper and lower case
// in one long piece.
func tokenLike(run string) bool {
	var digits, upper, lower, hex int
	for _, r := range run {
		switch {
		case r >= '0' && r <= '9':
			digits++
			hex++
		case r >= 'a' && r <= 'f', r >= 'A' && r <= 'F':
			hex++
		}
		switch {
		case r >= 'a' && r <= 'z':
			lower++
		case r >= 'A' && r <= 'Z':
			upper++
		}
	}
	if digits == 0 || upper+lower == 0 {
		return false
	}
	if hex == len(run) {
		return true
	}
	// a path or dotted name made of short words is not a token
	longest := 0
	for _, piece := range strings.FieldsFunc(run, func(r rune) bool { return r == '/' || r == '.' || r == '-' || r == '_' }) {
		longest = max(longest, len(piece))
	}
	return longest >= 20 && upper > 0 && lower > 0
}

// JSON redacts every string inside raw JSON; raw that is not JSON comes
// back as a redacted JSON string.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		b, _ := json.Marshal(Text(string(raw)))
		return b
	}
	b, err := json.Marshal(redactValue(v))
	if err != nil {
		b, _ = json.Marshal(Redacted)
	}
	return b
}

func redactValue(v any) any {
	switch x := v.(type) {
	case string:
		return Text(x)
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && SecretName(k) && k != "check" {
				x[k] = redactSecretValue(s)
				continue
			}
			x[k] = redactValue(e)
		}
	}
	return v
}

func redactSecretValue(s string) string {
	if s == "" {
		return s
	}
	return Redacted
}

// Manifests returns copies of a and b whose secret env values are
// replaced: Redacted on both sides when equal, Redacted and
// "[redacted: changed]" when they differ, so the diff still shows that a
// secret changed without showing it.
func Manifests(a, b *manifest.App) (*manifest.App, *manifest.App) {
	ra, rb := cloneEnv(a), cloneEnv(b)
	var envA, envB map[string]string
	if ra != nil && ra.Run != nil {
		envA = ra.Run.Env
	}
	if rb != nil && rb.Run != nil {
		envB = rb.Run.Env
	}
	for k, v := range envA {
		if !SecretName(k) {
			continue
		}
		envA[k] = Redacted
		if w, ok := envB[k]; ok && w != v {
			envB[k] = Redacted + ": changed"
		} else if ok {
			envB[k] = Redacted
		}
	}
	for k := range envB {
		if _, ok := envA[k]; !ok && SecretName(k) {
			envB[k] = Redacted
		}
	}
	return ra, rb
}

// cloneEnv copies a manifest deep enough that its env can be changed.
func cloneEnv(m *manifest.App) *manifest.App {
	if m == nil {
		return nil
	}
	c := *m
	if m.Run != nil {
		run := *m.Run
		run.Env = make(map[string]string, len(m.Run.Env))
		for k, v := range m.Run.Env {
			run.Env[k] = v
		}
		if len(m.Run.Env) == 0 {
			run.Env = m.Run.Env
		}
		c.Run = &run
	}
	return &c
}

// Changes redacts the values of a diff: whole parts written as JSON and
// leaves alike.
func Changes(cs []manifest.Change) []manifest.Change {
	out := make([]manifest.Change, len(cs))
	for i, c := range cs {
		out[i] = manifest.Change{Field: c.Field, Old: redactChangeValue(c.Old), New: redactChangeValue(c.New)}
	}
	return out
}

func redactChangeValue(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		if json.Valid([]byte(t)) {
			return string(JSON(json.RawMessage(t)))
		}
	}
	return Text(s)
}
