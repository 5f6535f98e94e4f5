package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

// templates put a secret where a rule must find it, on a line of its own.
var templates = []string{
	"password=%s", "DB_PASS: %s", "  api_key: %s # note", `{"api_key":"%s"}`, `{'token': '%s'}`,
	"postgres://admin:%s@db:5432/app", "Authorization: Bearer %s", "sent bearer %s now", "GET /x?token=%s&page=2",
	"--db-password=%s", "env: {GITHUB_TOKEN: %s, MODE: x}", "Cookie: theme=dark; sid=%s", "clientSecret = %s",
}

// secretAlphabet are the characters a generated secret is made of: those a
// value may hold in every template.
const secretAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-"

func FuzzText(f *testing.F) {
	f.Add("log line", []byte("hunter2hunter2"), "more", uint8(0))
	f.Add("-----BEGIN PRIVATE KEY-----", []byte("abcdefgh"), "", uint8(5))
	f.Add(`{"password": "`, []byte("s3cr3t-v4lue"), `"}`, uint8(3))
	f.Add("x_key: |", []byte("ABCDEFGH12"), "  y", uint8(1))
	f.Add("Bearer", []byte("zzzzzzzz"), "password=", uint8(6))
	f.Fuzz(func(t *testing.T, prefix string, raw []byte, suffix string, which uint8) {
		for _, in := range []string{prefix, suffix, prefix + string(raw) + suffix} {
			checkText(t, in)
		}
		secret := make([]byte, len(raw))
		for i, c := range raw {
			secret[i] = secretAlphabet[int(c)%len(secretAlphabet)]
		}
		tmpl := templates[int(which)%len(templates)]
		s := string(secret)
		if len(s) < 8 || strings.Contains(Changed, s) || strings.Contains(prefix+suffix, s) || strings.Contains(tmpl, s) ||
			strings.HasPrefix(s, "-") || strings.HasSuffix(s, ".") {
			return
		}
		line := strings.Replace(tmpl, "%s", s, 1)
		in := prefix + "\n" + line + "\n" + suffix
		for _, out := range []string{Text(in), TextKeepLines(in)} {
			if strings.Contains(out, s) {
				t.Fatalf("the secret %q of %q survives:\n%q", s, line, out)
			}
		}
		b, _ := json.Marshal(map[string]string{"api_key": s, "message": prefix + " " + line})
		if out := string(JSON(b)); strings.Contains(out, s) {
			t.Fatalf("the secret %q survives JSON: %s", s, out)
		}
	})
}

// checkText checks what holds for any input: no panic, idempotence, lines
// kept by TextKeepLines, and that redaction only hides: what is left
// outside the markers comes from the input, in order.
func checkText(t *testing.T, in string) {
	t.Helper()
	out := Text(in)
	if again := Text(out); again != out {
		t.Fatalf("not idempotent on %q:\n%q\n%q", in, out, again)
	}
	kept := TextKeepLines(in)
	if strings.Count(kept, "\n") != strings.Count(in, "\n") {
		t.Fatalf("TextKeepLines changed the lines of %q: %q", in, kept)
	}
	if again := TextKeepLines(kept); again != kept {
		t.Fatalf("TextKeepLines not idempotent on %q:\n%q\n%q", in, kept, again)
	}
	for _, o := range []string{out, kept} {
		if !subsequence(strings.ReplaceAll(o, Marker, ""), in) {
			t.Fatalf("Text(%q) = %q adds what was not there", in, o)
		}
	}
	j := JSON(json.RawMessage(in))
	if !json.Valid(j) && len(in) > 0 && strings.TrimSpace(in) != "" {
		t.Fatalf("JSON(%q) = %q is not JSON", in, j)
	}
}

func subsequence(sub, s string) bool {
	i := 0
	for j := 0; i < len(sub) && j < len(s); j++ {
		if sub[i] == s[j] {
			i++
		}
	}
	return i == len(sub)
}
