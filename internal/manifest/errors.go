package manifest

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is matched (with errors.Is) by every error that Parse, Load and
// FromJSON return: the manifest, or the file holding it, is not acceptable.
// Callers map it to "invalid input" (exit code 2, HTTP 400).
var ErrInvalid = errors.New("invalid manifest")

// FieldError is one problem with a manifest, located by file, line and
// field path (for example strategy.canary.steps[2].setWeight or run.env.FOO).
// Line is 0 only when there is no source line to point at (a manifest read
// from JSON, or a file that could not be read at all).
type FieldError struct {
	File    string
	Line    int
	Column  int
	Field   string
	Message string

	cause error // the underlying error, when there is one (fs.ErrNotExist …)
}

// Error formats the problem as "app.yaml:12: replicas: must be between 1
// and 256, got -3".
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *FieldError) Unwrap() error { return e.cause }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Errors is every problem found in one manifest, in the order of the lines
// they point at.
type Errors []*FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each problem, so errors.As finds a *FieldError and
// errors.Is finds the cause of any of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Is makes Errors match ErrInvalid.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// under reports whether field path p is path q or lies inside it.
func under(p, q string) bool {
	if q == "" || p == q {
		return true
	}
	return strings.HasPrefix(p, q) && (p[len(q)] == '.' || p[len(q)] == '[')
}

// child returns the path of field name inside path.
func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index returns the path of item i of the list at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parent returns the path that contains path, "" at the top.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
