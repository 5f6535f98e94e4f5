package ofrep

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/lastgood/lastgood/internal/access"
)

// ErrInvalid marks an evaluation tokens file that cannot be used.
var ErrInvalid = errors.New("invalid evaluation tokens")

// MinSecret is the shortest secret a tokens file may hold in plain text.
const MinSecret = 16

// Token is one evaluation credential: it may evaluate the flags of Apps
// (every app when Apps is nil), and nothing else.
type Token struct {
	Name string
	Apps []string
	sum  [sha256.Size]byte
}

// Allows reports whether the token may evaluate the flags of app.
func (t *Token) Allows(app string) bool { return t.Apps == nil || slices.Contains(t.Apps, app) }

// Tokens is the set of evaluation tokens. A nil *Tokens holds none: the
// OFREP address is open to whoever reaches it.
type Tokens struct {
	list   []Token
	plains []string // the secrets written in plain text, to check against the API's tokens
}

// Len is how many tokens there are.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// Plain returns the secrets the file holds in plain text.
func (t *Tokens) Plain() []string {
	if t == nil {
		return nil
	}
	return t.plains
}

// Lookup finds the token with this secret, comparing with every token in
// constant time.
func (t *Tokens) Lookup(secret string) (*Token, bool) {
	if t == nil {
		return nil, false
	}
	found := access.MatchSecret(secret, len(t.list), func(i int) [sha256.Size]byte { return t.list[i].sum })
	if found < 0 {
		return nil, false
	}
	return &t.list[found], true
}

var (
	tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	appName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	hashed    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// LoadTokens reads an evaluation tokens file (see ParseTokens).
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return ParseTokens(path, data)
}

// ParseTokens reads an evaluation tokens file: one token a line,
//
//	NAME APPS SECRET
//
// separated by spaces or tabs; blank lines and lines starting with # are
// ignored. APPS is * (every app) or a comma-separated list of app names;
// SECRET is the token (at least 16 characters) or sha256:HEX of it. Every
// problem is reported at once as FILE:LINE: what is wrong, never the
// secret.
func ParseTokens(file string, data []byte) (*Tokens, error) {
	toks := &Tokens{}
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, args...)))
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			bad("want NAME APPS SECRET (APPS is * or a comma-separated list of apps), got %d fields", len(fields))
			continue
		}
		name, apps, secret := fields[0], fields[1], fields[2]
		tok := Token{Name: name}
		if !tokenName.MatchString(name) {
			bad("token name %q: want 1 to 64 of A-Z a-z 0-9 . _ @ -", name)
		}
		if apps != "*" {
			for _, a := range strings.Split(apps, ",") {
				if !appName.MatchString(a) {
					bad("app %q: want an app name (lowercase letters, digits, -) or *", a)
				}
				tok.Apps = append(tok.Apps, a)
			}
		}
		switch {
		case hashed.MatchString(secret):
			b, _ := hex.DecodeString(strings.TrimPrefix(secret, "sha256:"))
			copy(tok.sum[:], b)
		case len(secret) < MinSecret:
			bad("token %s: the secret is shorter than %d characters", name, MinSecret)
		default:
			tok.sum = sha256.Sum256([]byte(secret))
			toks.plains = append(toks.plains, secret)
		}
		for _, o := range toks.list {
			if o.Name == tok.Name {
				bad("the token name %s is used twice", name)
			}
			if o.sum == tok.sum {
				bad("tokens %s and %s have the same secret", o.Name, name)
			}
		}
		toks.list = append(toks.list, tok)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(errs...))
	}
	if len(toks.list) == 0 {
		return nil, fmt.Errorf("%w: %s holds no token", ErrInvalid, file)
	}
	return toks, nil
}
