package prometheus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// rules are the compiled failIf and passIf expressions; a nil program is
// one that was not written.
type rules struct {
	failIf, passIf *vm.Program
}

// env declares what an expression can use: the query's number.
type env struct {
	Result float64 `expr:"result"`
}

func compileRules(failIf, passIf string) (rules, error) {
	var r rules
	if strings.TrimSpace(failIf) == "" && strings.TrimSpace(passIf) == "" {
		return r, &CompileError{Part: PartFailIf, Msg: `failIf or passIf is required (for example "result > 0.1")`}
	}
	var errs []error
	var err error
	if r.failIf, err = compileRule(PartFailIf, failIf); err != nil {
		errs = append(errs, err)
	}
	if r.passIf, err = compileRule(PartPassIf, passIf); err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

func compileRule(part, src string) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	p, err := expr.Compile(src, expr.Env(env{}), expr.AsBool())
	if err == nil {
		return p, nil
	}
	var ferr *file.Error
	if errors.As(err, &ferr) && ferr.Line > 0 && ferr.Snippet != "" {
		return nil, &CompileError{Part: part, Line: ferr.Line, Column: ferr.Column + 1, Msg: ruleMessage(ferr.Message)}
	}
	if errors.As(err, &ferr) {
		return nil, &CompileError{Part: part, Msg: ruleMessage(ferr.Message)}
	}
	return nil, &CompileError{Part: part, Msg: ruleMessage(err.Error())}
}

// ruleMessage says in the manifest's words that an expression must be a
// condition.
func ruleMessage(msg string) string {
	got, ok := strings.CutPrefix(msg, "expected bool, but got ")
	if !ok {
		return msg
	}
	switch got {
	case "int", "float64":
		got = "number"
	}
	return "must be true or false (a comparison such as result > 0.1); this one gives a " + got
}

// decide turns the query's number into a verdict: fail when failIf holds;
// pass when passIf holds; with only one of them written, its opposite is
// the other verdict; with both written and neither true, inconclusive.
func (r rules) decide(result float64) (string, error) {
	in := env{Result: result}
	if r.failIf != nil {
		failed, err := run(r.failIf, in)
		if err != nil {
			return Inconclusive, fmt.Errorf("failIf: %w", err)
		}
		if failed {
			return Fail, nil
		}
		if r.passIf == nil {
			return Pass, nil
		}
	}
	passed, err := run(r.passIf, in)
	switch {
	case err != nil:
		return Inconclusive, fmt.Errorf("passIf: %w", err)
	case passed:
		return Pass, nil
	case r.failIf == nil:
		return Fail, nil
	default:
		return Inconclusive, nil
	}
}

func run(p *vm.Program, in env) (bool, error) {
	out, err := expr.Run(p, in)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrExpression, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("%w: got %T, want true or false", ErrExpression, out)
	}
	return b, nil
}
