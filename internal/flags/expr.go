package flags

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// An Expr is a parsed rule condition (a rule's if:). The language is small
// on purpose, and documented in docs/flags.md:
//
//	expr       = and { "or" and }
//	and        = unary { "and" unary }
//	unary      = "not" unary | "(" expr ")" | comparison
//	comparison = path ("==" | "!=") literal | path ["not"] "in" "[" literal { "," literal } "]"
//	path       = name { "." name }        name = letter or _, then letters, digits, _ or -
//	literal    = "string" | number | true | false
//
// A path names an attribute of the evaluation context; dots go into
// nested objects (user.plan is {"user": {"plan": …}}). A comparison with
// an attribute the context lacks, or of another type than the literal, is
// false — whatever the operator — so `not` of it is true.
type Expr struct {
	src  string
	root node
}

// String returns the expression as written.
func (e *Expr) String() string { return e.src }

// Paths returns every attribute path the expression reads, in order.
func (e *Expr) Paths() []string {
	var out []string
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *logical:
			walk(n.left)
			walk(n.right)
		case *negation:
			walk(n.inner)
		case *comparison:
			out = append(out, strings.Join(n.path, "."))
		}
	}
	walk(e.root)
	return out
}

// Match reports whether the context satisfies the expression.
func (e *Expr) Match(ctx map[string]any) bool { return e.root.match(ctx) }

type node interface{ match(ctx map[string]any) bool }

type logical struct {
	and         bool
	left, right node
}

func (l *logical) match(ctx map[string]any) bool {
	if l.and {
		return l.left.match(ctx) && l.right.match(ctx)
	}
	return l.left.match(ctx) || l.right.match(ctx)
}

type negation struct{ inner node }

func (n *negation) match(ctx map[string]any) bool { return !n.inner.match(ctx) }

// comparison is path == v, path != v, path in [v…] or path not in [v…].
type comparison struct {
	path   []string
	op     string // "==", "!=", "in", "not in"
	values []any  // string, float64 or bool
}

func (c *comparison) match(ctx map[string]any) bool {
	v, ok := lookup(ctx, c.path)
	if !ok {
		return false
	}
	found, typed := false, false
	for _, want := range c.values {
		if sameType(v, want) {
			typed = true
			if v == want {
				found = true
			}
		}
	}
	if !typed {
		return false
	}
	switch c.op {
	case "==", "in":
		return found
	default:
		return !found
	}
}

// lookup follows a dotted path into nested objects. Numbers are float64,
// as encoding/json decodes them.
func lookup(ctx map[string]any, path []string) (any, bool) {
	var cur any = ctx
	for _, name := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[name]; !ok {
			return nil, false
		}
	}
	switch cur.(type) {
	case string, float64, bool:
		return cur, true
	}
	return nil, false
}

func sameType(a, b any) bool {
	switch a.(type) {
	case string:
		_, ok := b.(string)
		return ok
	case float64:
		_, ok := b.(float64)
		return ok
	case bool:
		_, ok := b.(bool)
		return ok
	}
	return false
}

// MaxExprLength bounds a rule's condition, in bytes.
const MaxExprLength = 4096

// maxDepth bounds nesting (parentheses and not), so a hostile expression
// cannot exhaust the stack.
const maxDepth = 64

// SyntaxError is a problem with an expression, at a byte offset.
type SyntaxError struct {
	Offset  int
	Message string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Message)
}

// ErrAttributePath is matched by the SyntaxError of a malformed attribute
// path (user..plan, .plan, user.).
var ErrAttributePath = errors.New("malformed attribute path")

type pathError struct{ SyntaxError }

func (e *pathError) Is(target error) bool { return target == ErrAttributePath }

// Parse parses a rule condition.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxExprLength {
		return nil, &SyntaxError{0, fmt.Sprintf("is %d bytes; the limit is %d", len(src), MaxExprLength)}
	}
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{0, "is not valid UTF-8"}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: src}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &SyntaxError{t.off, fmt.Sprintf("unexpected %s; expected and, or, or the end", t)}
	}
	return &Expr{src: src, root: root}, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokName
	tokString
	tokNumber
	tokOp // == != ( ) [ ] , .
)

type token struct {
	kind tokKind
	text string // the name, the operator, the number as written
	str  string // a string literal's value
	off  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return strconv.Quote(t.str)
	}
	return strconv.Quote(t.text)
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameByte(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' || c == '-' }

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isNameStart(c):
			j := i + 1
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokName, text: src[i:j], off: i})
			i = j
		case c == '"':
			s, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, str: s, off: i})
			i += n
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] == 'e' || src[j] == 'E' ||
				(src[j] == '-' || src[j] == '+') && (src[j-1] == 'e' || src[j-1] == 'E')) {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], off: i})
			i = j
		case strings.HasPrefix(src[i:], "==") || strings.HasPrefix(src[i:], "!="):
			toks = append(toks, token{kind: tokOp, text: src[i : i+2], off: i})
			i += 2
		case strings.IndexByte("()[],.", c) >= 0:
			toks = append(toks, token{kind: tokOp, text: src[i : i+1], off: i})
			i++
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, &SyntaxError{i, fmt.Sprintf("unexpected character %q", r)}
		}
	}
	return append(toks, token{kind: tokEOF, off: len(src)}), nil
}

// lexString reads the string literal at src[i] (a '"'): its value and
// length. Escapes: \" \\ \n \t.
func lexString(src string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '"':
			return b.String(), j + 1 - i, nil
		case '\\':
			if j+1 == len(src) {
				break
			}
			j++
			switch src[j] {
			case '"', '\\':
				b.WriteByte(src[j])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				return "", 0, &SyntaxError{j - 1, fmt.Sprintf(`unknown escape \%c in a string (use \" \\ \n \t)`, src[j])}
			}
		default:
			b.WriteByte(src[j])
		}
	}
	return "", 0, &SyntaxError{i, "string is not closed (a \" is missing)"}
}

type parser struct {
	toks []token
	pos  int
	src  string
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

func (p *parser) isName(word string) bool {
	t := p.peek()
	return t.kind == tokName && t.text == word
}

func (p *parser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == op
}

func (p *parser) or(depth int) (node, error) {
	left, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		p.next()
		right, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		left = &logical{and: false, left: left, right: right}
	}
	return left, nil
}

func (p *parser) and(depth int) (node, error) {
	left, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		p.next()
		right, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		left = &logical{and: true, left: left, right: right}
	}
	return left, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, &SyntaxError{p.peek().off, fmt.Sprintf("nested more than %d deep", maxDepth)}
	}
	switch {
	case p.isName("not"):
		p.next()
		inner, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &negation{inner}, nil
	case p.isOp("("):
		p.next()
		inner, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			t := p.peek()
			return nil, &SyntaxError{t.off, fmt.Sprintf("expected ), got %s", t)}
		}
		p.next()
		return inner, nil
	}
	return p.comparison()
}

var keywords = map[string]bool{"and": true, "or": true, "not": true, "in": true, "true": true, "false": true}

// path reads name { "." name }. Names touch their dots: "user . plan"
// is refused.
func (p *parser) path() ([]string, error) {
	start := p.peek()
	if start.kind == tokOp && start.text == "." {
		return nil, &pathError{SyntaxError{start.off, "an attribute path cannot start with a dot"}}
	}
	if start.kind != tokName || keywords[start.text] {
		return nil, &SyntaxError{start.off, fmt.Sprintf("expected an attribute name (like country or user.plan), got %s", start)}
	}
	path := []string{p.next().text}
	end := start.off + len(start.text)
	for p.isOp(".") {
		dot := p.next()
		if dot.off != end {
			return nil, &pathError{SyntaxError{dot.off, "no space is allowed before a dot in an attribute path"}}
		}
		t := p.peek()
		switch {
		case t.kind == tokOp && t.text == ".":
			return nil, &pathError{SyntaxError{t.off, "two dots in a row in an attribute path"}}
		case t.kind != tokName || t.off != dot.off+1:
			return nil, &pathError{SyntaxError{dot.off, "an attribute path cannot end with a dot"}}
		}
		p.next()
		path = append(path, t.text)
		end = t.off + len(t.text)
	}
	return path, nil
}

func (p *parser) comparison() (node, error) {
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	c := &comparison{path: path}
	t := p.peek()
	switch {
	case t.kind == tokOp && (t.text == "==" || t.text == "!="):
		p.next()
		c.op = t.text
		v, err := p.literal()
		if err != nil {
			return nil, err
		}
		c.values = []any{v}
		return c, nil
	case p.isName("in"):
		p.next()
		c.op = "in"
	case p.isName("not"):
		p.next()
		if !p.isName("in") {
			t := p.peek()
			return nil, &SyntaxError{t.off, fmt.Sprintf("expected in after not, got %s", t)}
		}
		p.next()
		c.op = "not in"
	default:
		return nil, &SyntaxError{t.off, fmt.Sprintf("expected ==, != or in after %s, got %s", strings.Join(path, "."), t)}
	}
	if !p.isOp("[") {
		t := p.peek()
		return nil, &SyntaxError{t.off, fmt.Sprintf("expected [ to start the list after in, got %s", t)}
	}
	p.next()
	for {
		v, err := p.literal()
		if err != nil {
			return nil, err
		}
		c.values = append(c.values, v)
		if p.isOp(",") {
			p.next()
			continue
		}
		if p.isOp("]") {
			p.next()
			return c, nil
		}
		t := p.peek()
		return nil, &SyntaxError{t.off, fmt.Sprintf("expected , or ] in the list, got %s", t)}
	}
}

func (p *parser) literal() (any, error) {
	t := p.next()
	switch {
	case t.kind == tokString:
		return t.str, nil
	case t.kind == tokNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, &SyntaxError{t.off, fmt.Sprintf("%s is not a number", t)}
		}
		return f, nil
	case t.kind == tokName && (t.text == "true" || t.text == "false"):
		return t.text == "true", nil
	}
	return nil, &SyntaxError{t.off, fmt.Sprintf("expected a value (a \"string\", a number, true or false), got %s", t)}
}
