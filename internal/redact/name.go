package redact

import (
	"strings"
	"unicode"
)

// The words of a key name that decide whether its value is secret. A name
// is split into words at every character that is not a letter or a digit
// and at case changes (dbPass, APIKey, X-Api-Key), and lower-cased;
// trailing words that are only digits or a version (TOKEN_2, KEY_V2) are
// dropped.
var (
	// strongWords make a name secret wherever they stand in it, as a word
	// or as the end of one (PGPASSWORD, clientsecret, accesstoken), unless
	// the last word is a qualifier.
	strongWords = []string{"password", "passwd", "passphrase", "secret", "secrets", "token",
		"credential", "credentials", "apikey", "privatekey", "secretkey", "accesskey"}
	// lastWords make a name secret only as its last word: alone they are
	// too common (pass in passIf, auth in author is not a word match but
	// auth in auth_enabled is).
	lastWords = map[string]bool{"pass": true, "pwd": true, "auth": true, "authorization": true,
		"cookie": true, "session": true, "sessionid": true, "dsn": true, "signature": true,
		"jwt": true, "creds": true, "bearer": true}
	// qualifiers, as the last word, make a name describe a secret rather
	// than hold one: password_policy_enabled, token_count, secret_name,
	// PASSWORD_FILE, token_url.
	qualifiers = map[string]bool{"enabled": true, "enable": true, "disabled": true, "disable": true,
		"required": true, "policy": true, "name": true, "names": true, "file": true, "path": true,
		"dir": true, "count": true, "length": true, "len": true, "min": true, "max": true, "size": true,
		"ttl": true, "timeout": true, "expiry": true, "expires": true, "expiration": true, "age": true,
		"type": true, "kind": true, "mode": true, "format": true, "header": true, "url": true, "uri": true,
		"endpoint": true, "version": true, "ref": true, "env": true, "set": true, "configured": true,
		"present": true, "rotated": true, "rotation": true, "strength": true, "method": true,
		"scheme": true, "provider": true}
	// publicKeys are the words before a last word "key" that make a key
	// name no secret: public_key, primary_key, sort_key, cache_key, ….
	publicKeys = map[string]bool{"public": true, "primary": true, "foreign": true, "sort": true,
		"partition": true, "cache": true, "routing": true, "idempotency": true, "object": true,
		"shard": true, "dedup": true, "group": true, "index": true, "row": true, "hash": true,
		"range": true, "lookup": true, "map": true, "flag": true, "feature": true, "message": true,
		"translation": true}
)

// Name reports whether a key named name — an environment variable, a JSON
// field, a query or form parameter, a header, a YAML key — holds a secret.
// See Rules for what it matches; docs/redaction.md lists the same.
func Name(name string) bool {
	ws := words(name)
	for len(ws) > 0 && versionWord(ws[len(ws)-1]) {
		ws = ws[:len(ws)-1]
	}
	if len(ws) == 0 {
		return false
	}
	last := ws[len(ws)-1]
	if qualifiers[last] {
		return false
	}
	for _, w := range ws {
		if strongWord(w) {
			return true
		}
	}
	switch {
	case lastWords[last]:
		return true
	case last == "key" && len(ws) > 1:
		return !publicKeys[ws[len(ws)-2]]
	case last == "id" && len(ws) > 1:
		return ws[len(ws)-2] == "session"
	}
	return false
}

func strongWord(w string) bool {
	for _, s := range strongWords {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}

// versionWord is a trailing word that numbers a name: 2, v2.
func versionWord(w string) bool {
	w = strings.TrimPrefix(w, "v")
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// words splits a name at non-alphanumerics and at case changes, lower-cased.
func words(name string) []string {
	var out []string
	rs := []rune(name)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// dbPass | APIKey: a capital after a lower-case letter or a
			// digit starts a word, and so does the last capital of a run
			// followed by a lower-case letter.
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return out
}
