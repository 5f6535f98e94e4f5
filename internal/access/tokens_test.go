package access

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	aliceSecret = "alice-0123456789abcdef"
	ciSecret    = "ci-token-0123456789abcdef"
)

func sumHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestParseTokens(t *testing.T) {
	file := "# who may do what\n\n" +
		"alice   deployer " + aliceSecret + "\n" +
		"\tci\tviewer\t" + sumHex(ciSecret) + "\r\n" +
		"root admin " + strings.Repeat("r", 20) + "\n"
	toks, plain, err := ParseTokens("tokens.txt", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 || plain != 2 {
		t.Fatalf("%d tokens, %d plain", toks.Len(), plain)
	}
	for _, tc := range []struct {
		secret, name string
		role         Role
	}{{aliceSecret, "alice", Deployer}, {ciSecret, "ci", Viewer}, {strings.Repeat("r", 20), "root", Admin}} {
		got, ok := toks.Lookup(tc.secret)
		if !ok || got.Name != tc.name || got.Role != tc.role {
			t.Errorf("Lookup(%s's secret) = %+v %v", tc.name, got, ok)
		}
	}
	for _, wrong := range []string{"", "alice", aliceSecret + "x", sumHex(ciSecret)} {
		if got, ok := toks.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) found %s", wrong, got.Name)
		}
	}
}

func TestParseTokensErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"fields", "alice deployer\n", []string{"t:1: want NAME ROLE SECRET (3 fields separated by spaces), got 2 field(s)"}},
		{"role", "alice root " + aliceSecret + "\n", []string{`t:1: role: want viewer, deployer or admin, got "root"`}},
		{"name", "-x viewer " + aliceSecret + "\n", []string{`t:1: name "-x": want 1 to 64 of`}},
		{"env name", "LASTGOOD_TOKEN admin " + aliceSecret + "\n", []string{"t:1: name LASTGOOD_TOKEN is the LASTGOOD_TOKEN variable's"}},
		{"short", "alice viewer short\n", []string{"t:1: secret: want at least 16 characters, got 5"}},
		{"bad hash", "alice viewer sha256:abc\n", []string{"t:1: secret: sha256: must be followed by 64 lowercase hex digits"}},
		{"same name", "alice viewer " + aliceSecret + "\nalice admin " + ciSecret + "\n", []string{"t:2: name alice is already used on line 1"}},
		{"same secret", "alice viewer " + aliceSecret + "\n# c\nbob admin " + sumHex(aliceSecret) + "\n", []string{"t:3: secret: the same as the token on line 1"}},
		{"empty", "# nothing\n\n", []string{"t: no token in the file"}},
		{"every problem at once", "a b\nalice root " + aliceSecret + "\n", []string{"t:1: want NAME", "t:2: role:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, _, err := ParseTokens("t", []byte(tc.file))
			if err == nil || toks != nil {
				t.Fatalf("accepted: %v", toks)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, secret := range []string{aliceSecret, ciSecret, "short"} {
				if strings.Contains(tc.file, secret) && strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestLoadTokensWarnsWhenOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	os.WriteFile(p, []byte("alice admin "+aliceSecret+"\n"), 0o644)
	os.Chmod(p, 0o644)
	if _, warns, err := LoadTokens(p); err != nil || len(warns) != 1 || !strings.Contains(warns[0], "chmod 600") {
		t.Fatalf("mode 644: %v %v", warns, err)
	}
	os.Chmod(p, 0o600)
	if _, warns, err := LoadTokens(p); err != nil || len(warns) != 0 {
		t.Fatalf("mode 600: %v %v", warns, err)
	}
	// Hashes only: nothing to steal, nothing to warn about.
	os.WriteFile(p, []byte("alice admin "+sumHex(aliceSecret)+"\n"), 0o644)
	os.Chmod(p, 0o644)
	if _, warns, err := LoadTokens(p); err != nil || len(warns) != 0 {
		t.Fatalf("hashed, mode 644: %v %v", warns, err)
	}
	if _, _, err := LoadTokens(filepath.Join(dir, "nope")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestAddRefusesDuplicates(t *testing.T) {
	toks := &Tokens{}
	if err := toks.Add("a", Admin, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := toks.Add("b", Viewer, "s3cret"); err == nil {
		t.Fatal("a second token with the same secret was accepted")
	}
	if err := toks.Add("a", Viewer, "other"); err == nil {
		t.Fatal("a second token with the same name was accepted")
	}
	if err := toks.Add("c", Viewer, ""); err == nil {
		t.Fatal("an empty secret was accepted")
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("alice deployer " + aliceSecret + "\n"))
	f.Add([]byte("# c\n\tbob viewer " + sumHex(ciSecret) + "\r\n"))
	f.Add([]byte("a b c d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, plain, err := ParseTokens("f", data)
		if err != nil {
			if toks != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v with tokens %v", err, toks)
			}
			return
		}
		if toks.Len() == 0 || plain > toks.Len() {
			t.Fatalf("%d tokens, %d plain", toks.Len(), plain)
		}
		seen := map[string]bool{}
		for _, tok := range toks.list {
			if seen[tok.Name] || tok.Role < Viewer || tok.Role > Admin {
				t.Fatalf("token %+v", tok)
			}
			seen[tok.Name] = true
		}
	})
}
