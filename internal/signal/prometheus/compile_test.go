package prometheus

import (
	"errors"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/manifest"
)

const addr = "http://127.0.0.1:9090"

func TestCompileRejectsWithPartAndPosition(t *testing.T) {
	cases := []struct {
		name, address, query, failIf, passIf string
		part                                 string
		line, col                            int
		msg                                  string
	}{
		{"unclosed parenthesis", addr, `sum(rate(x{revision="{{.Revision}}"}[1m])`, "result > 0", "",
			PartQuery, 1, 42, "unclosed left parenthesis"},
		{"error after an action maps to the template", addr, `x{revision="{{.Revision}}"} +`, "result > 0", "",
			PartQuery, 1, 30, "unexpected end of input"},
		{"error inside an action's output points at the action", addr, `rate(x[{{.App}}])`, "result > 0", "",
			PartQuery, 1, 8, ""},
		{"second line", addr, "sum(\n  rate(x[1m]) +\n)", "result > 0", "",
			PartQuery, 3, 1, "unexpected"},
		{"unknown function", addr, `sun(x)`, "result > 0", "",
			PartQuery, 1, 1, `unknown function with name "sun"`},
		{"unknown template field", addr, `x{revision="{{.Revison}}"}`, "result > 0", "",
			PartTemplate, 1, 15, `no entry for key "Revison"`},
		{"unclosed action", addr, `x{{.Revision`, "result > 0", "",
			PartTemplate, 1, 0, "unclosed action"},
		{"unknown template function", addr, `x{revision="{{rev .Revision}}"}`, "result > 0", "",
			PartTemplate, 1, 0, `function "rev" not defined`},
		{"empty query", addr, ``, "result > 0", "", PartTemplate, 0, 0, "is required"},
		{"failIf syntax", addr, `x`, "result >", "", PartFailIf, 1, 8, "unexpected token EOF"},
		{"failIf unknown name", addr, `x`, "reslt > 1", "", PartFailIf, 1, 1, "unknown name reslt"},
		{"failIf on the second line", addr, `x`, "result > 1 &&\n  value < 2", "", PartFailIf, 2, 3, "unknown name value"},
		{"failIf not a bool", addr, `x`, "result + 1", "", PartFailIf, 0, 0, "must be true or false"},
		{"passIf", addr, `x`, "", "result >>> 1", PartPassIf, 1, 0, ""},
		{"neither rule", addr, `x`, "", "", PartFailIf, 0, 0, "failIf or passIf is required"},
		{"address scheme", "127.0.0.1:9090", `x`, "result > 1", "", PartAddress, 0, 0, "want an http or https URL"},
		{"address missing", "", `x`, "result > 1", "", PartAddress, 0, 0, "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(manifest.Prometheus{Address: tc.address, Query: tc.query}, tc.failIf, tc.passIf)
			if err == nil {
				t.Fatal("Compile accepted it")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("%v is not a *CompileError", err)
			}
			if ce.Part != tc.part || ce.Line != tc.line || (tc.col != 0 && ce.Column != tc.col) {
				t.Errorf("got %s at %d:%d, want %s at %d:%d (%v)", ce.Part, ce.Line, ce.Column, tc.part, tc.line, tc.col, err)
			}
			if !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", ce.Msg, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), tc.part) {
				t.Errorf("error %q does not start with the part %q", err, tc.part)
			}
		})
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, err := Compile(manifest.Prometheus{Address: "ftp://x", Query: "sum("}, "result >", "1 +")
	if err == nil {
		t.Fatal("Compile accepted it")
	}
	for _, part := range []string{PartAddress, PartQuery, PartFailIf, PartPassIf} {
		if !strings.Contains(err.Error(), part+" ") && !strings.Contains(err.Error(), part+":") {
			t.Errorf("%q does not report the %s", err, part)
		}
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, q := range []string{
		`sum(rate(checkout_failed{revision="{{.Revision}}"}[1m]))`,
		`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="{{.App}}",revision="{{.Revision}}"}[5m])))`,
		`sum(rate(errors{revision="{{.Revision}}"}[1m])) - sum(rate(errors{revision="{{.StableRevision}}"}[1m]))`,
		`{{if eq .Revision 1}}vector(0){{else}}up{{end}}`,
		"sum(\n  up\n)",
		`1`,
	} {
		c, err := Compile(manifest.Prometheus{Address: addr, Query: q}, "result > 0.1", "result < 0.01")
		if err != nil {
			t.Errorf("Compile(%q): %v", q, err)
			continue
		}
		c.Close()
	}
}

func TestControlStructuresReportRenderedPosition(t *testing.T) {
	_, err := Compile(manifest.Prometheus{Address: addr, Query: `{{if .Revision}}sum(x{{end}}`}, "result > 0", "")
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Part != PartQuery {
		t.Fatalf("got %v, want a query error", err)
	}
	if !strings.Contains(ce.Msg, `rendered for checking: "sum(x"`) {
		t.Errorf("message %q does not show the rendered query", ce.Msg)
	}
}

func TestRulesDecide(t *testing.T) {
	cases := []struct {
		failIf, passIf string
		result         float64
		want           string
	}{
		{"result > 1", "", 2, Fail},
		{"result > 1", "", 1, Pass},
		{"", "result < 1", 0.5, Pass},
		{"", "result < 1", 1, Fail},
		{"result > 10", "result < 1", 20, Fail},
		{"result > 10", "result < 1", 0, Pass},
		{"result > 10", "result < 1", 5, Inconclusive},
		{"result > 0", "result >= 0", 1, Fail}, // failIf wins
	}
	for _, tc := range cases {
		r, err := compileRules(tc.failIf, tc.passIf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.decide(tc.result)
		if err != nil || got != tc.want {
			t.Errorf("failIf %q passIf %q result %v: got %s (%v), want %s", tc.failIf, tc.passIf, tc.result, got, err, tc.want)
		}
	}
}
