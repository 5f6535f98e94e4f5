package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// ErrInvalid marks a tokens file that cannot be used.
var ErrInvalid = errors.New("invalid tokens")

// EnvTokenName is the name under which LASTGOOD_TOKEN is audited.
const EnvTokenName = "LASTGOOD_TOKEN"

// MinSecret is the shortest secret a tokens file may hold in plain text.
const MinSecret = 16

// Token is one named credential. Only the sha256 of its secret is kept.
type Token struct {
	Name string
	Role Role
	sum  [sha256.Size]byte
}

// Tokens is the set of credentials the API accepts. The zero value (and
// nil) holds none, which means the API is open.
type Tokens struct {
	list []Token
}

// Len is how many tokens there are.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// Clone returns a copy that Add can grow without changing t.
func (t *Tokens) Clone() *Tokens {
	if t == nil {
		return &Tokens{}
	}
	return &Tokens{list: append([]Token(nil), t.list...)}
}

// Add adds a token given by its secret. It refuses an empty secret, a
// name already used, and a secret another token has.
func (t *Tokens) Add(name string, role Role, secret string) error {
	if secret == "" {
		return invalidError{fmt.Errorf("token %s: empty secret", name)}
	}
	return t.add(Token{Name: name, Role: role, sum: sha256.Sum256([]byte(secret))})
}

func (t *Tokens) add(tok Token) error {
	for _, o := range t.list {
		if o.Name == tok.Name {
			return invalidError{fmt.Errorf("the token name %s is used twice", tok.Name)}
		}
		if o.sum == tok.sum {
			return invalidError{fmt.Errorf("tokens %s and %s have the same secret", o.Name, tok.Name)}
		}
	}
	t.list = append(t.list, tok)
	return nil
}

// Lookup finds the token whose secret is given. It hashes the secret to
// the stored sums' length and compares it with every token in constant
// time, so the time it takes says nothing about how close a guess was or
// which token matched.
func (t *Tokens) Lookup(secret string) (Token, bool) {
	if t == nil {
		return Token{}, false
	}
	found := MatchSecret(secret, len(t.list), func(i int) [sha256.Size]byte { return t.list[i].sum })
	if found < 0 {
		return Token{}, false
	}
	return t.list[found], true
}

// MatchSecret returns the index among n SHA-256 sums (sum(i)) of the one
// secret hashes to, or -1. It compares with every sum, each in constant
// time, so the time it takes says nothing about how close a guess was or
// which one matched. Every token store of lastgood looks secrets up
// through it.
func MatchSecret(secret string, n int, sum func(i int) [sha256.Size]byte) int {
	want := sha256.Sum256([]byte(secret))
	found := -1
	for i := range n {
		have := sum(i)
		if subtle.ConstantTimeCompare(want[:], have[:]) == 1 {
			found = i
		}
	}
	return found
}

// byName returns the token called name.
func (t *Tokens) byName(name string) (Token, bool) {
	if t == nil {
		return Token{}, false
	}
	for _, tok := range t.list {
		if tok.Name == name {
			return tok, true
		}
	}
	return Token{}, false
}

var (
	tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	hashed    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// LoadTokens reads a tokens file (see ParseTokens). Its warnings say what
// is unsafe but usable: a file with secrets in plain text that other
// users can read.
func LoadTokens(path string) (*Tokens, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, invalidError{fmt.Errorf("tokens file: %w", err)}
	}
	toks, plain, err := ParseTokens(path, data)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o044 != 0 && plain > 0 {
		warnings = append(warnings, fmt.Sprintf("tokens file %s holds %d secret(s) in plain text and other users can read it (mode %v): chmod 600 it, or write sha256:HEX of each secret",
			path, plain, st.Mode().Perm()))
	}
	return toks, warnings, nil
}

// ParseTokens reads a tokens file: one token a line, as
//
//	NAME ROLE SECRET
//
// separated by spaces or tabs; blank lines and lines starting with # are
// ignored. NAME is 1 to 64 of A-Z a-z 0-9 . _ @ - (starting with a letter
// or digit) and names the token in the event log; ROLE is viewer,
// deployer or admin; SECRET is the token itself (at least 16 characters,
// no spaces) or sha256:HEX, the hex sha256 of it, so that the file need
// not hold the secret. It returns every problem at once, each as
// FILE:LINE: what is wrong — never the secret — and how many secrets are
// in plain text.
func ParseTokens(file string, data []byte) (*Tokens, int, error) {
	toks := &Tokens{}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
	names, sums := map[string]int{}, map[[sha256.Size]byte]int{}
	plain := 0
	for i, text := range strings.Split(string(data), "\n") {
		line := i + 1
		text = strings.TrimSpace(strings.TrimSuffix(text, "\r"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			bad(line, "want NAME ROLE SECRET (3 fields separated by spaces), got %d field(s)", len(f))
			continue
		}
		name, roleText, secret := f[0], f[1], f[2]
		ok := true
		if !tokenName.MatchString(name) {
			bad(line, "name %q: want 1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit", name)
			ok = false
		} else if name == EnvTokenName {
			bad(line, "name %s is the LASTGOOD_TOKEN variable's; choose another", name)
			ok = false
		} else if first, dup := names[name]; dup {
			bad(line, "name %s is already used on line %d", name, first)
			ok = false
		}
		role, err := ParseRole(roleText)
		if err != nil {
			bad(line, "role: %v", err)
			ok = false
		}
		var sum [sha256.Size]byte
		switch {
		case strings.HasPrefix(secret, "sha256:"):
			if !hashed.MatchString(secret) {
				bad(line, "secret: sha256: must be followed by 64 lowercase hex digits")
				ok = false
				break
			}
			hex.Decode(sum[:], []byte(secret[len("sha256:"):]))
		case len(secret) < MinSecret:
			bad(line, "secret: want at least %d characters, got %d (make one with: openssl rand -hex 32)", MinSecret, len(secret))
			ok = false
		default:
			sum = sha256.Sum256([]byte(secret))
			plain++
		}
		if ok {
			if first, dup := sums[sum]; dup {
				bad(line, "secret: the same as the token on line %d; every token needs its own", first)
				ok = false
			}
		}
		if !ok {
			continue
		}
		names[name], sums[sum] = line, line
		toks.list = append(toks.list, Token{Name: name, Role: role, sum: sum})
	}
	if len(errs) == 0 && len(toks.list) == 0 {
		errs = append(errs, fmt.Errorf("%s: no token in the file; want lines of NAME ROLE SECRET", file))
	}
	if len(errs) > 0 {
		return nil, 0, invalidError{errors.Join(errs...)}
	}
	return toks, plain, nil
}

// invalidError is ErrInvalid with a message of its own: the located
// problems, one a line, without a prefix.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }
