// Package journey is the synthetic-journey signal: a short sequence of HTTP
// requests (log in, then open the profile, say) sent straight to one
// replica's address, each step checked for its status and, optionally, its
// body. Cookies set by one step are sent by the next, as a browser would.
// The first step that fails ends the journey.
package journey

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultTimeout bounds a whole journey when Run is given no timeout.
const DefaultTimeout = 10 * time.Second

// Step is one HTTP request of a journey and what its answer must be.
type Step struct {
	Name    string            `json:"name"`
	Method  string            `json:"method,omitempty"` // default GET
	Path    string            `json:"path"`             // starts with /; may carry a query string
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// ExpectStatus is the status the answer must have; default 200.
	ExpectStatus int `json:"expectStatus,omitempty"`
	// ExpectBody, when set, is a Go regular expression the answer's body
	// (its first MiB) must match.
	ExpectBody string `json:"expectBody,omitempty"`
}

// StepResult is what happened at one step.
type StepResult struct {
	Name     string
	Status   int // 0 when no answer came
	Duration time.Duration
	Err      string // empty when the step passed
}

// Result is one run of a journey.
type Result struct {
	Passed bool
	// Steps holds the steps that ran, in order; the last one is the one
	// that failed when Passed is false.
	Steps []StepResult
	// FailedStep is the index in the journey of the step that failed; -1
	// when the journey passed.
	FailedStep int
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid journey")

var methods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
}

// Validate reports every problem of a journey's steps, joined, each naming
// the step (by number from 1, and by name) and the field.
func Validate(steps []Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("%w: a journey needs at least one step", ErrInvalid)
	}
	var errs []error
	for i, s := range steps {
		if _, err := compile(s); err != nil {
			errs = append(errs, fmt.Errorf("step %d%s: %w", i+1, quoteName(s.Name), err))
		}
	}
	return errors.Join(errs...)
}

func quoteName(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", name)
}

// compiled is a step ready to run.
type compiled struct {
	Step
	body *regexp.Regexp
}

func compile(s Step) (compiled, error) {
	c := compiled{Step: s}
	if c.Method == "" {
		c.Method = "GET"
	}
	if c.ExpectStatus == 0 {
		c.ExpectStatus = 200
	}
	var errs []error
	if !methods[c.Method] {
		errs = append(errs, fmt.Errorf("%w: method %q: want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", ErrInvalid, s.Method))
	}
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, " \t\r\n") {
		errs = append(errs, fmt.Errorf("%w: path %q: want a path that starts with / and has no spaces", ErrInvalid, s.Path))
	}
	if c.ExpectStatus < 100 || c.ExpectStatus > 599 {
		errs = append(errs, fmt.Errorf("%w: expectStatus %d: want 100..599", ErrInvalid, s.ExpectStatus))
	}
	for k, v := range s.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			errs = append(errs, fmt.Errorf("%w: header %q: want a token name and a value on one line", ErrInvalid, k))
		}
	}
	if s.ExpectBody != "" {
		re, err := regexp.Compile(s.ExpectBody)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: expectBody: %v", ErrInvalid, err))
		}
		c.body = re
	}
	return c, errors.Join(errs...)
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
