package redact

import (
	"regexp"
	"strings"
)

// assignment finds a key and the separator after it: key=value,
// key = value, key: value, "key": value, 'key': value. The value is read
// by hand after the match.
var assignment = regexp.MustCompile(`(["']?)([-A-Za-z0-9_.]+)(["']?)([ \t]*)([=:])([ \t]*)`)

// reference is a value that names a secret without holding it: ${VAR} or
// $VAR, expanded at run time from the environment.
var reference = regexp.MustCompile(`^\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$`)

// blockScalar is a YAML block scalar indicator: the value is on the lines
// below, indented.
var blockScalar = regexp.MustCompile(`^[|>][-+]?[0-9]?[ \t]*(?:#.*)?$`)

// unquotedEnd are the characters that end an unquoted value in free text.
const unquotedEnd = " \t\r\n\"'&;,)]}<>"

// assignments finds the values of keys named like secrets (Name) in free
// text. A quoted value is hidden between its quotes; a key that starts a
// line with ':' (YAML, an HTTP header) and any Authorization or Cookie
// header hides the rest of the line (a YAML block scalar: the lines
// indented below it); any other value ends at white space or one of
// & ; , ) ] } < > " '. Empty values and references ($VAR, ${VAR}) stay.
func assignments(s string) []span {
	var out []span
	for _, m := range assignment.FindAllStringSubmatchIndex(s, -1) {
		open, key, closing := s[m[2]:m[3]], s[m[4]:m[5]], s[m[6]:m[7]]
		before, sep, after := s[m[8]:m[9]], s[m[10]:m[11]], s[m[12]:m[13]]
		if open != closing {
			continue
		}
		switch sep {
		case "=":
			if (before == "") != (after == "") || strings.HasPrefix(s[m[1]:], "=") {
				continue // a = b with one space is prose or code; == compares
			}
		case ":":
			if before != "" && open == "" || strings.HasPrefix(s[m[1]:], "//") {
				continue // "x : y", or a URL's scheme
			}
			if open == "" && after != "" && proseKey(s, m[0], key) {
				continue // "check errors: pass: error rate …"
			}
		}
		if !Name(key) {
			continue
		}
		if sp, ok := value(s, m[0], m[1], key, sep == ":" && open == ""); ok {
			out = append(out, sp)
		}
	}
	return out
}

// proseKey reports whether key, unquoted at k and followed by ": ", is a
// word of prose rather than a key: a single word that is secret only as a
// last word (pass, auth, session, …; not the headers Authorization and
// Cookie), in the middle of a line and
// not in a YAML flow map ({pass: x} and "a, pass: x" stay keys).
func proseKey(s string, k int, key string) bool {
	ws := words(key)
	if len(ws) != 1 || !lastWords[ws[0]] || ws[0] == "authorization" || ws[0] == "cookie" || strings.ContainsAny(key, "_-.") {
		return false
	}
	if _, startsLine := lineIndent(s, k); startsLine {
		return false
	}
	before := strings.TrimRight(s[:k], " \t")
	return before != "" && !strings.HasSuffix(before, "{") && !strings.HasSuffix(before, ",")
}

// value returns the span of the value that starts at v, for the key whose
// match starts at k. colon tells an unquoted key followed by ':'.
func value(s string, k, v int, key string, colon bool) (span, bool) {
	// The end of the line is found only when needed: a text of one long
	// line with many keys stays linear.
	eol := func() int {
		if i := strings.IndexByte(s[v:], '\n'); i >= 0 {
			return v + i
		}
		return len(s)
	}
	rest := s[v:]
	switch {
	case rest == "", rest[0] == '\n', rest[0] == '\r', strings.HasPrefix(rest, Marker[:len(Marker)-1]):
		return span{}, false // nothing, or already hidden ([redacted], [redacted: changed])
	case rest[0] == '"' || rest[0] == '\'':
		end := closingQuote(rest)
		if end < 0 {
			return trimmed(s, v+1, eol())
		}
		if end == 1 {
			return span{}, false // ""
		}
		return span{v + 1, v + end}, true
	case rest[0] == '{' || rest[0] == '[':
		return span{}, false // a structure: its keys decide
	}
	ws := words(key)
	wholeLine := ws[len(ws)-1] == "authorization" || ws[len(ws)-1] == "cookie"
	if colon {
		if indent, startsLine := lineIndent(s, k); startsLine {
			line := s[v:eol()]
			if blockScalar.MatchString(line) {
				return block(s, eol(), indent)
			}
			wholeLine = true
			if i := strings.Index(line, " #"); i >= 0 {
				rest = line[:i] // a YAML comment
			}
		}
	}
	var end int
	if wholeLine {
		end = min(len(rest), eol()-v)
	} else if end = strings.IndexAny(rest, unquotedEnd); end < 0 {
		end = len(rest)
	}
	val := strings.TrimRight(rest[:end], " \t\r")
	if val == "" || reference.MatchString(val) {
		return span{}, false
	}
	return span{v, v + len(val)}, true
}

// closingQuote returns the index of the quote that closes the one at
// q[0] (a backslash escapes a double quote), or -1 when none does on
// this line.
func closingQuote(q string) int {
	for i := 1; i < len(q) && q[i] != '\n'; i++ {
		switch {
		case q[0] == '"' && q[i] == '\\':
			if i+1 < len(q) && q[i+1] != '\n' {
				i++
			}
		case q[i] == q[0]:
			return i
		}
	}
	return -1
}

func trimmed(s string, a, b int) (span, bool) {
	t := strings.TrimRight(s[a:b], " \t\r")
	if t == "" {
		return span{}, false
	}
	return span{a, a + len(t)}, true
}

// lineIndent reports whether position k starts its line, after white
// space and YAML's "- ", and with how much indentation. It looks back
// only over that white space.
func lineIndent(s string, k int) (int, bool) {
	blank := func(j int) bool { return s[j] == ' ' || s[j] == '\t' }
	j := k
	for j > 0 && blank(j-1) {
		j--
	}
	if j > 0 && j < k && s[j-1] == '-' { // "- key:", a list item
		j--
		for j > 0 && blank(j-1) {
			j--
		}
	}
	if j > 0 && s[j-1] != '\n' {
		return 0, false
	}
	indent := 0
	for j+indent < k && blank(j+indent) {
		indent++
	}
	return indent, true
}

// block returns the span of the lines after eol that are indented more
// than indent (blank lines among them too): a YAML block scalar's text.
func block(s string, eol, indent int) (span, bool) {
	if eol >= len(s) {
		return span{}, false
	}
	start, end := -1, -1
	for pos := eol + 1; pos < len(s); {
		next := strings.IndexByte(s[pos:], '\n')
		line := s[pos:]
		if next >= 0 {
			line = s[pos : pos+next]
		}
		if strings.TrimSpace(line) != "" {
			lead := len(line) - len(strings.TrimLeft(line, " \t"))
			if lead <= indent {
				break
			}
			if start < 0 {
				start = pos + lead
			}
			end = pos + len(strings.TrimRight(line, " \t\r"))
		}
		if next < 0 {
			break
		}
		pos += next + 1
	}
	if start < 0 {
		return span{}, false
	}
	return span{start, end}, true
}
