package flags

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func ctxOf(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExprMatch(t *testing.T) {
	ctx := `{"country": "NL", "age": 42, "beta": true, "user": {"plan": "pro", "org": {"id": "acme"}}, "list": [1]}`
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`country == "NL"`, true},
		{`country == "DE"`, false},
		{`country != "DE"`, true},
		{`country != "NL"`, false},
		{`age == 42`, true},
		{`age == 42.0`, true},
		{`age == "42"`, false}, // another type: false
		{`age != "42"`, false}, // another type: false whatever the operator
		{`beta == true`, true},
		{`beta == false`, false},
		{`user.plan == "pro"`, true},
		{`user.org.id == "acme"`, true},
		{`user.org == "acme"`, false}, // an object is no value
		{`list == 1`, false},
		{`missing == "x"`, false},
		{`missing != "x"`, false},
		{`not missing == "x"`, true},
		{`user.plan in ["pro", "team"]`, true},
		{`user.plan in ["free"]`, false},
		{`user.plan not in ["free"]`, true},
		{`user.plan not in ["pro"]`, false},
		{`country == "NL" and age == 42`, true},
		{`country == "NL" and age == 41`, false},
		{`country == "DE" or age == 42`, true},
		{`country == "DE" or age == 41`, false},
		{`not (country == "DE" or age == 41)`, true},
		{`country == "DE" or country == "NL" and age == 41`, false}, // and binds tighter
		{`(country == "DE" or country == "NL") and age == 42`, true},
		{`not not beta == true`, true},
		{`country=="NL"`, true},
		{`user.plan == "p\"ro"`, false},
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.expr, err)
			continue
		}
		if got := e.Match(ctxOf(t, ctx)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestExprSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		expr, want string
		path       bool
	}{
		{``, "expected an attribute name", false},
		{`country`, "expected ==, != or in", false},
		{`country = "NL"`, `unexpected character '='`, false},
		{`country == NL`, "expected a value", false},
		{`country == "NL`, "string is not closed", false},
		{`user..plan == "x"`, "two dots in a row", true},
		{`.plan == "x"`, "cannot start with a dot", true},
		{`user. == "x"`, "cannot end with a dot", true},
		{`user .plan == "x"`, "no space is allowed before a dot", true},
		{`user. plan == "x"`, "cannot end with a dot", true},
		{`a == "x" and`, "expected an attribute name", false},
		{`(a == "x"`, "expected ), got end", false},
		{`a in "x"`, "expected [", false},
		{`a in ["x" "y"]`, "expected , or ]", false},
		{`a not == "x"`, "expected in after not", false},
		{`a == "x" b == "y"`, "expected and, or", false},
		{`and == "x"`, "expected an attribute name", false},
		{`a == 1e999`, "is not a number", false},
		{`a == "\q"`, `unknown escape \q`, false},
		{strings.Repeat("(", 100) + `a == 1` + strings.Repeat(")", 100), "nested more than", false},
		{strings.Repeat("x", MaxExprLength+1), "the limit is", false},
	} {
		_, err := Parse(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.expr, err, tc.want)
			continue
		}
		if errors.Is(err, ErrAttributePath) != tc.path {
			t.Errorf("Parse(%q): errors.Is(ErrAttributePath) = %v, want %v", tc.expr, !tc.path, tc.path)
		}
	}
}

func TestExprPaths(t *testing.T) {
	e, err := Parse(`a == 1 and not (b.c in ["x"] or d != true)`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Paths(), ","); got != "a,b.c,d" {
		t.Errorf("Paths = %s", got)
	}
}

// FuzzParse checks that Parse never panics, and that what it accepts it
// accepts again when written back with spaces around every token.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`country == "NL"`, `a.b in [1, "x", true] and not c != false`, `(a == 1 or b == 2)`, `a not in ["\""]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			var pe *pathError
			if !errors.As(err, &se) && !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): error %T is not a SyntaxError", src, err)
			}
			return
		}
		e.Match(map[string]any{"a": "x", "b": map[string]any{"c": 1.0}})
		if e.String() != src {
			t.Fatalf("String() = %q, want %q", e.String(), src)
		}
	})
}
