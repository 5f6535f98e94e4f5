package redact

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Rule is one of the rules Text applies, as docs/redaction.md lists it,
// with examples that the tests check: each Redacted example's In becomes
// its Out, each Kept string comes back unchanged.
type Rule struct {
	Name     string
	Doc      string
	Redacted []Example
	Kept     []string
}

// Example is an input and what Text makes of it.
type Example struct{ In, Out string }

// Rules are the rules, in the order docs/redaction.md lists them.
var Rules = []Rule{
	{
		Name: "Key names",
		Doc: "A key holds a secret when, split into lower-case words (at every character that is not a letter or digit, and at case changes: " +
			"`dbPass`, `APIKey`; trailing numbers and versions like `_2`, `_V2` dropped), " +
			"any word is or ends with one of " + list(strongWords) + "; " +
			"or its last word is one of " + list(slices.Collect(maps.Keys(lastWords))) + "; " +
			"or its last word is `key` after another word that is not one of " + list(slices.Collect(maps.Keys(publicKeys))) + "; " +
			"or it ends in `session id` — " +
			"except when its last word is one of " + list(slices.Collect(maps.Keys(qualifiers))) +
			": such a key describes a secret (`password_policy_enabled=true`, `token_count=3`, `PASSWORD_FILE=/run/pw`) and its value is kept.",
		Redacted: []Example{
			{"DB_PASS=hunter2", "DB_PASS=[redacted]"},
			{"pwd=hunter2 pass=hunter3", "pwd=[redacted] pass=[redacted]"},
			{"PGPASSWORD=x1 clientSecret=x2", "PGPASSWORD=[redacted] clientSecret=[redacted]"},
			{"api_key=k-123 GITHUB_TOKEN=t1", "api_key=[redacted] GITHUB_TOKEN=[redacted]"},
			{"AWS_SECRET_ACCESS_KEY=abc SECRET_KEY_BASE=def", "AWS_SECRET_ACCESS_KEY=[redacted] SECRET_KEY_BASE=[redacted]"},
			{"private_key=k1 HOOK_KEY=k2 apiKey=k3", "private_key=[redacted] HOOK_KEY=[redacted] apiKey=[redacted]"},
			{"session_id=s1 sessionid=s2 auth=a1", "session_id=[redacted] sessionid=[redacted] auth=[redacted]"},
			{"API_TOKEN_2=t1", "API_TOKEN_2=[redacted]"},
		},
		Kept: []string{
			"password_policy_enabled=true",
			"token_count=12 max_tokens=4096 prompt_tokens=9",
			"secret_name=db PASSWORD_FILE=/run/secrets/db token_url=https://auth.example/token",
			"public_key=abc cache_key=user:42 key=new-checkout",
			"author=bob passIf=done authorized=yes",
		},
	},
	{
		Name: "Assignments in free text",
		Doc: "The value of such a key is hidden in `key=value`, `key = value`, `key: value`, `key:value`, JSON's `\"key\": \"value\"`, " +
			"`'key': 'value'`, query strings and forms (`?token=abc&page=2`) and YAML flow maps (`{DB_PASS: x, A: b}`). " +
			"A quoted value is hidden between its quotes; an unquoted one ends at white space or one of `& ; , ) ] } < > \" '`. " +
			"A key that starts a line followed by `:` (YAML, an HTTP header) hides the rest of the line up to a ` #` comment, " +
			"and a YAML block scalar (`key: |`) the lines indented below it; an `Authorization` or `Cookie` header hides the rest of its line wherever it stands. " +
			"Empty values and references (`$VAR`, `${VAR}`, which name a secret without holding it) are kept, " +
			"and so is prose: a single word secret only as a last word (`pass`, `auth`, `session`) followed by `: ` in the middle of a line, " +
			"not after `{` or `,` (`check errors: pass: error rate …`).",
		Redacted: []Example{
			{`{"password": "a b", "user": "bob"}`, `{"password": "[redacted]", "user": "bob"}`},
			{`{'api_key': 'k1'}`, `{'api_key': '[redacted]'}`},
			{"GET /x?token=abc&page=2", "GET /x?token=[redacted]&page=2"},
			{"env: {DB_PASS: hunter2, MODE: fast}", "env: {DB_PASS: [redacted], MODE: fast}"},
			{"  DB_PASSWORD: hunter two  # the db", "  DB_PASSWORD: [redacted]  # the db"},
			{"TLS_KEY: |\n  line one\n  line two\nnext: 1", "TLS_KEY: |\n  [redacted]\nnext: 1"},
			{"Authorization: token abc123", "Authorization: [redacted]"},
			{"got header Cookie: sid=1; theme=dark", "got header Cookie: [redacted]"},
			{"login failed: password = hunter2", "login failed: password = [redacted]"},
		},
		Kept: []string{
			"secret: ${HOOK_KEY}",
			"token=$GITHUB_TOKEN password=",
			`password= user=bob`,
			"if token == expected",
			"passwords must be rotated",
			"check errors: pass: error rate 0.4% vs 0.5%",
			"login: auth: ok (session: new)",
		},
	},
	{
		Name:     "URL credentials",
		Doc:      "The password of a URL's userinfo (`scheme://user:password@host`); the user name stays. The userinfo ends at the last `@` before the path.",
		Redacted: []Example{{"dial postgres://admin:pw@db:5432/app failed", "dial postgres://admin:[redacted]@db:5432/app failed"}, {"redis://:p@ss@cache", "redis://:[redacted]@cache"}},
		Kept:     []string{"https://example.com/a?email=a@b.c", "ssh://git@github.com/x.git", "http://127.0.0.1:8080/healthz"},
	},
	{
		Name:     "Auth schemes",
		Doc:      "The credentials after `Bearer` (any case, any length), and after `Basic` the base64 of `user:password` (any length).",
		Redacted: []Example{{"sent Bearer abc", "sent Bearer [redacted]"}, {"basic dXNlcjpwYXNz", "basic [redacted]"}, {"Basic YTpi", "Basic [redacted]"}},
		Kept:     []string{`WWW-Authenticate: Basic realm="api"`, `Bearer realm="api"`, "Basic checks passed"},
	},
	{
		Name: "Vendor keys and tokens",
		Doc: "Keys and tokens by their prefix: `sk-…` (16 or more characters), `sk_live_`/`sk-live-`/`sk_test_`/`pk_live_`/`rk_live_`/`sk-proj-`/`sk-ant-`…, " +
			"GitHub's `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` and `github_pat_`, Slack's `xoxb-`/`xoxp-`/`xoxa-`/`xoxo-`/`xoxs-`/`xoxr-`, " +
			"AWS access key ids (`AKIA…`, `ASIA…`), Google API keys (`AIza…`).",
		Redacted: []Example{
			{"key sk-live-4eC39HqLyjW", "key [redacted]"},
			{"openai sk-abcdefghijklmnop1234", "openai [redacted]"},
			{"stripe pk_live_51H8abc", "stripe [redacted]"},
			{"gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 pat github_pat_11ABCDEFG0123456789_abcdefghij", "gh [redacted] pat [redacted]"},
			{"slack xoxb-1234-5678-abcdefgh", "slack [redacted]"},
			{"aws AKIAIOSFODNN7EXAMPLE here", "aws [redacted] here"},
			{"google AIzaSyA-1234567890abcdefghijklmnopqrstu", "google [redacted]"},
		},
		Kept: []string{"risk-assessment task-1234567890abcdefgh sk-short"},
	},
	{
		Name:     "JWTs",
		Doc:      "JSON Web Tokens: `eyJ…` `.` `…` `.` `…`.",
		Redacted: []Example{{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dBjftJeZ4CVP", "jwt [redacted]"}},
	},
	{
		Name:     "Private keys",
		Doc:      "PEM private key blocks (`-----BEGIN … PRIVATE KEY-----`) to their END line, or to the end of the text when it is cut.",
		Redacted: []Example{{"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- after", "[redacted] after"}, {"key -----BEGIN PRIVATE KEY-----\nMIIEvQ", "key [redacted]"}},
		Kept:     []string{"-----BEGIN CERTIFICATE-----"},
	},
	{
		Name: "Long tokens",
		Doc: "A secret of no shape above: a piece of a base64-like run (between `/ . - _`) of 20 or more characters with upper- and lower-case letters " +
			"and digits mixed in (digits and letters change places at least three times). " +
			"Hex is kept — sha256 digests, revision digests, trace ids and commit hashes are hex — and so are paths, UUIDs and identifiers made of words.",
		Redacted: []Example{{"key Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA== end", "key [redacted] end"}},
		Kept: []string{
			"artifact sha256:" + strings.Repeat("ab12", 16) + " stored",
			"trace 4bf92f3577b34da6a3ce929d0e0e4736 commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
			"id 550e8400-e29b-41d4-a716-446655440000",
			"opened /var/lib/lastgood/artifacts/sha256/" + strings.Repeat("0f", 32),
			"check errors failed: error rate 20.0% > 1.0% (p=0.0001)",
			"/tmp/TestAnswersShowNoSecret2346928483/003/app.yaml",
		},
	},
}

// Doc renders the rules as docs/redaction.md lists them.
func Doc() string {
	var b strings.Builder
	for i, r := range Rules {
		fmt.Fprintf(&b, "%d. **%s.** %s\n", i+1, r.Name, r.Doc)
		for _, e := range r.Redacted {
			fmt.Fprintf(&b, "   - `%s` → `%s`\n", oneLine(e.In), oneLine(e.Out))
		}
		for _, k := range r.Kept {
			fmt.Fprintf(&b, "   - kept: `%s`\n", oneLine(k))
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }

func list(words []string) string {
	words = slices.Sorted(slices.Values(words))
	for i, w := range words {
		words[i] = "`" + w + "`"
	}
	return strings.Join(words, ", ")
}
