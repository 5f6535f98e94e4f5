package redact

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated list of rules in docs/redaction.md")

// TestRules checks every example of every rule: what must be hidden is,
// what must stay does, and a second pass changes nothing.
func TestRules(t *testing.T) {
	for _, r := range Rules {
		t.Run(r.Name, func(t *testing.T) {
			if len(r.Redacted) == 0 {
				t.Fatal("a rule without an example of what it hides")
			}
			for _, e := range r.Redacted {
				got := Text(e.In)
				if got != e.Out {
					t.Errorf("Text(%q)\n got %q\nwant %q", e.In, got, e.Out)
				}
				if again := Text(got); again != got {
					t.Errorf("Text is not idempotent on %q: %q then %q", e.In, got, again)
				}
			}
			for _, k := range r.Kept {
				if got := Text(k); got != k {
					t.Errorf("Text(%q) = %q, want it kept", k, got)
				}
			}
		})
	}
}

func TestName(t *testing.T) {
	secret := []string{"DB_PASS", "db_password", "PGPASSWORD", "MYSQL_ROOT_PASSWORD", "pwd", "pass", "Password",
		"x-api-key", "X-Api-Key", "APIKey", "apiKey", "api_key", "API_KEY_V2", "token", "GITHUB_TOKEN", "authToken",
		"oauth2Token", "client_secret", "clientSecret", "secret", "AWS_SECRET_ACCESS_KEY", "aws_session_token",
		"credentials", "GOOGLE_APPLICATION_CREDENTIALS", "private_key", "privateKey", "SIGNING_KEY", "auth", "Authorization",
		"Proxy-Authorization", "Cookie", "set-cookie", "session", "session_id", "SENTRY_DSN", "passphrase", "SECRET_KEY_BASE",
		"jwt", "X-Hub-Signature", "--db-password", "DB_PASS_2"}
	kept := []string{"", "key", "name", "password_policy_enabled", "PASSWORD_FILE", "token_count", "max_tokens", "prompt_tokens",
		"secret_name", "secretName", "public_key", "primary_key", "sort_key", "cache_key", "author", "authored", "passIf",
		"bypass", "compass", "keyboard", "monkey", "cookieName", "sessionAffinity", "token_url",
		"auth_enabled", "AUTH_URL", "tokenizer", "digest", "check", "verdict", "reason", "user", "username", "session_count",
		"2", "v2", "_"}
	for _, n := range secret {
		if !Name(n) {
			t.Errorf("Name(%q) = false, want a secret", n)
		}
	}
	for _, n := range kept {
		if Name(n) {
			t.Errorf("Name(%q) = true, want no secret", n)
		}
	}
}

func TestWords(t *testing.T) {
	tests := map[string]string{
		"dbPass": "db pass", "APIKey": "api key", "X-Api-Key": "x api key", "oauth2Token": "oauth2 token",
		"DB_PASS": "db pass", "HTTPServer": "http server", "a.b-c_d e": "a b c d e", "ÄrgerToken": "ärger token",
	}
	for in, want := range tests {
		if got := strings.Join(words(in), " "); got != want {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNeverRedacted lists what lastgood itself shows that must survive:
// digests, revision numbers, its own messages.
func TestNeverRedacted(t *testing.T) {
	digest := "sha256:" + strings.Repeat("9f86d081884c7d65", 4)
	for _, s := range []string{
		digest,
		"revision 3 created from app.yaml; digest " + digest,
		"rollout #12 started: revision 2 → 3 (canary)",
		"check errors failed: canary error rate 20.0% (n=400) vs stable 0.5% (n=1600); e-value 1.2e+05 > 1/α",
		"replica web-3-0 exited: exit status 2",
		"2025-01-02T15:04:05.123Z INFO listening addr=127.0.0.1:40843",
		"GET /healthz 200 1.2ms",
		"hash 3f786850e387550fdab836ed7e6dc881de23001b prevHash 89e6c98d92887913cadf06b2adb97f26cde4849b",
		"the token is checked by the auth service",
		"Basic checks passed",
	} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q, want it kept", s, got)
		}
	}
}

// TestMarkersStay: text that shows redacted values is itself left alone.
func TestMarkersStay(t *testing.T) {
	for _, s := range []string{"DB_PASS: " + Changed, "run.env.API_TOKEN: " + Marker + " → " + Changed, "password=" + Marker + "&token=" + Marker} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q", s, got)
		}
	}
}

func TestTextKeepLines(t *testing.T) {
	in := "a: 1\nkey: -----BEGIN RSA PRIVATE KEY-----\n  MIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\npassword: x\nz: 2"
	got := TextKeepLines(in)
	want := "a: 1\nkey: [redacted]\n  [redacted]\n[redacted]\npassword: [redacted]\nz: 2"
	if got != want {
		t.Errorf("TextKeepLines\n got %q\nwant %q", got, want)
	}
	if strings.Count(got, "\n") != strings.Count(in, "\n") {
		t.Error("lines were lost")
	}
	if Text(in) != "a: 1\nkey: [redacted]\npassword: [redacted]\nz: 2" {
		t.Errorf("Text = %q", Text(in))
	}
}

func TestJSON(t *testing.T) {
	in := json.RawMessage(`{"check":"errors","reason":"Bearer abcdefgh12345678","n":0.25,"logEPass":1.5,` +
		`"headers":{"X-Api-Token":"plain","Accept":"text/html"},"list":["password: x1"],` +
		`"env":{"DB_PASS":"hunter2","HOOK_KEY":"${HOOK}","EMPTY_TOKEN":"","GREETING":"hi"},` +
		`"secrets":["a","b"],"credentials":{"user":"bob","pass":"pw"},"password":12345,"big":12345678901234567890}`)
	var got map[string]any
	out := JSON(in)
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	env := got["env"].(map[string]any)
	switch {
	case got["check"] != "errors", got["n"] != 0.25, got["logEPass"] != 1.5, got["password"] != 12345.0:
		t.Errorf("plain fields or numbers changed: %s", out)
	case got["reason"] != "Bearer "+Marker, got["list"].([]any)[0] != "password: "+Marker:
		t.Errorf("strings not redacted as text: %s", out)
	case got["headers"].(map[string]any)["X-Api-Token"] != Marker, got["headers"].(map[string]any)["Accept"] != "text/html":
		t.Errorf("headers: %s", out)
	case env["DB_PASS"] != Marker, env["HOOK_KEY"] != "${HOOK}", env["EMPTY_TOKEN"] != "", env["GREETING"] != "hi":
		t.Errorf("env: %s", out)
	case got["secrets"].([]any)[1] != Marker, got["credentials"].(map[string]any)["user"] != "bob", got["credentials"].(map[string]any)["pass"] != Marker:
		t.Errorf("nested: %s", out)
	case !bytes.Contains(out, []byte("12345678901234567890")):
		t.Errorf("a large number lost its digits: %s", out)
	}
	if again := JSON(out); !bytes.Equal(again, out) {
		t.Errorf("JSON is not idempotent:\n%s\n%s", out, again)
	}
	if got := string(JSON(json.RawMessage(`not json password=x`))); got != `"not json password=[redacted]"` {
		t.Errorf("JSON(not json) = %s", got)
	}
	if got := JSON(nil); got != nil {
		t.Errorf("JSON(nil) = %s", got)
	}
}

func TestPair(t *testing.T) {
	tests := []struct{ old, new, wantOld, wantNew string }{
		{"a", "b", Marker, Changed},
		{"a", "a", Marker, Marker},
		{"", "b", "", Marker},
		{"a", "", Marker, ""},
		{"${A}", "b", "${A}", Marker},
	}
	for _, tt := range tests {
		if o, n := Pair(tt.old, tt.new); o != tt.wantOld || n != tt.wantNew {
			t.Errorf("Pair(%q, %q) = %q, %q; want %q, %q", tt.old, tt.new, o, n, tt.wantOld, tt.wantNew)
		}
	}
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("token", "t-with")
	log.Info("connect postgres://u:pw@db failed", "err", errorString("dial: password=hunter2"), "api_key", "k1",
		"count", 3, slog.Group("req", "Authorization", "Bearer b1", "path", "/x"), "line", "ok")
	out := buf.String()
	for _, secret := range []string{"t-with", ":pw@", "hunter2", "k1", "b1"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q: %s", secret, out)
		}
	}
	for _, kept := range []string{`"count":3`, `"path":"/x"`, `"line":"ok"`, "postgres://u:[redacted]@db"} {
		if !strings.Contains(out, kept) {
			t.Errorf("log lost %q: %s", kept, out)
		}
	}
	if h := Handler(Handler(slog.DiscardHandler)); h.(handler).next != slog.DiscardHandler {
		t.Error("Handler wraps twice")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestDocListsTheRules keeps docs/redaction.md's list the list the code
// applies. Run with -update to rewrite it.
func TestDocListsTheRules(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "redaction.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- rules: begin (generated by internal/redact; go test ./internal/redact -update) -->\n", "<!-- rules: end -->"
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q section", path, begin, end)
	}
	want := doc[:i+len(begin)] + Doc() + doc[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Errorf("%s does not list the rules the code applies; run go test ./internal/redact -update", path)
	}
}
