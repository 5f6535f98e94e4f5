package prometheus

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"
)

// sample is the data a query template is rendered with at Compile, to find
// template errors and to check the PromQL it produces.
var sample = TemplateData{App: "app", Revision: 2, StableRevision: 1, Namespace: "default", Pod: "app-2-[a-z0-9]{5}"}

// promql parses PromQL the way a recent Prometheus does, experimental
// functions included: a server that does not know one reports it at
// Evaluate, which is inconclusive rather than a rejected manifest.
var promql = parser.NewParser(parser.Options{EnableExperimentalFunctions: true})

// compileQuery parses the query template, renders it with sample data and
// checks the PromQL syntax of the result.
func compileQuery(src string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &CompileError{Part: PartTemplate, Msg: "is required"}
	}
	tmpl, err := template.New("query").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, templateError(err)
	}
	rendered, err := render(tmpl, sample)
	if err != nil {
		return nil, templateError(err)
	}
	if strings.TrimSpace(rendered) == "" {
		return nil, &CompileError{Part: PartQuery, Msg: "renders to nothing"}
	}
	if _, err := promql.ParseExpr(rendered); err != nil {
		return nil, promqlError(src, tmpl, rendered, err)
	}
	return tmpl, nil
}

func render(tmpl *template.Template, data TemplateData) (string, error) {
	var b strings.Builder
	if err := tmpl.Execute(&b, data.fields()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// templatePos finds "query:LINE:" or "query:LINE:COL:" in text/template's
// messages; COL there counts bytes from 0.
var templatePos = regexp.MustCompile(`^template: query:(\d+)(?::(\d+))?: (.*)$`)

func templateError(err error) *CompileError {
	msg := err.Error()
	m := templatePos.FindStringSubmatch(msg)
	if m == nil {
		return &CompileError{Part: PartTemplate, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	col := 0
	if m[2] != "" {
		col, _ = strconv.Atoi(m[2])
		col++
	}
	text := m[3]
	// Execution errors repeat where they happened: keep only what.
	if i := strings.Index(text, ">: "); strings.HasPrefix(text, "executing ") && i >= 0 {
		text = text[i+3:]
	}
	return &CompileError{Part: PartTemplate, Line: line, Column: col, Msg: text}
}

// promqlError reports a PromQL syntax error at its position in the template
// as written. When the template's control structures make that mapping
// impossible, it gives the position in the query rendered for checking, and
// shows that query.
func promqlError(src string, tmpl *template.Template, rendered string, err error) *CompileError {
	var perrs parser.ParseErrors
	var perr *parser.ParseErr
	switch {
	case errors.As(err, &perrs) && len(perrs) > 0:
		perr = &perrs[0]
	case errors.As(err, &perr):
	default:
		return &CompileError{Part: PartQuery, Msg: err.Error()}
	}
	msg := perr.Err.Error()
	off := int(perr.PositionRange.Start)
	if off < 0 || off > len(rendered) {
		return &CompileError{Part: PartQuery, Msg: msg}
	}
	if srcOff, ok := sourceOffset(src, tmpl, off); ok {
		line, col := lineCol(src, srcOff)
		return &CompileError{Part: PartQuery, Line: line, Column: col, Msg: msg}
	}
	line, col := lineCol(rendered, off)
	return &CompileError{Part: PartQuery, Line: line, Column: col,
		Msg: fmt.Sprintf("%s (position in the query rendered for checking: %q)", msg, rendered)}
}

// sourceOffset maps a byte offset in the rendered query back to the
// template source. It handles templates made of text and {{actions}} only;
// an offset inside an action's output maps to the action's "{{".
func sourceOffset(src string, tmpl *template.Template, off int) (int, bool) {
	at := 0
	for _, n := range tmpl.Tree.Root.Nodes {
		var out string
		start := int(n.Position())
		switch n := n.(type) {
		case *parse.TextNode:
			out = string(n.Text)
		case *parse.ActionNode:
			t, err := template.New("query").Option("missingkey=error").Parse(n.String())
			if err != nil {
				return 0, false
			}
			if out, err = render(t, sample); err != nil {
				return 0, false
			}
			if i := strings.LastIndex(src[:start], "{{"); i >= 0 {
				start = i
			}
		default:
			return 0, false
		}
		if off < at+len(out) {
			if _, text := n.(*parse.TextNode); text {
				return start + off - at, true
			}
			return start, true
		}
		at += len(out)
	}
	return len(src), at == off
}

// lineCol turns a byte offset into a line and a column (in characters),
// both from 1.
func lineCol(s string, off int) (line, col int) {
	before := s[:off]
	line = 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, utf8.RuneCountInString(before) + 1
}
