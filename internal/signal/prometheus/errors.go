package prometheus

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error Compile returns.
var ErrInvalid = errors.New("invalid prometheus check")

// The parts of a check that a CompileError can name.
const (
	PartAddress  = "address"
	PartTemplate = "query template"
	PartQuery    = "query" // the PromQL the template renders
	PartFailIf   = "failIf"
	PartPassIf   = "passIf"
)

// CompileError is one problem found by Compile.
type CompileError struct {
	// Part is one of the Part constants.
	Part string
	// Line and Column locate the problem in what the user wrote (the query
	// template or the expression), both counted from 1; zero when the
	// problem has no single position.
	Line, Column int
	Msg          string
}

func (e *CompileError) Error() string {
	if e.Line > 0 && e.Column > 0 {
		return fmt.Sprintf("%s %d:%d: %s", e.Part, e.Line, e.Column, e.Msg)
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.Part, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Part, e.Msg)
}

// Unwrap lets callers match errors.Is(err, ErrInvalid).
func (e *CompileError) Unwrap() error { return ErrInvalid }
