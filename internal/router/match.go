package router

import (
	"net/http"
	"strings"
)

// Match sends requests that carry a header or a cookie with an exact value
// to one revision, whatever the weights, so that testers can reach a canary
// on purpose.
//
// The rules of a Table are tried in order and the first that the request
// satisfies decides: the request goes to that revision's backends (round
// robin among them) when the table has a route with backends for it, even
// one of weight 0; when it has none, the request is routed as if it had
// matched no rule (affinity cookie, then weights). A matched request takes
// precedence over the affinity cookie and is not given one; it is counted
// in the revision's stats and gets the Lastgood-Revision header like any
// other.
//
// A header rule is satisfied by any field of that name (in any case) whose
// value, without surrounding spaces, is Value; "Host" compares the request's
// host. A cookie rule is satisfied by any cookie of that name (names are
// case-sensitive) in any Cookie field whose value, without one pair of
// surrounding double quotes, is Value. A rule that sets both Header and
// Cookie, or neither, matches nothing.
type Match struct {
	Header   string // header name; empty when Cookie is set
	Cookie   string // cookie name; empty when Header is set
	Value    string // exact value
	Revision int
}

// matchRule is the compiled form of a Match.
type matchRule struct {
	header string // canonical header name; "" for a cookie rule
	lower  string // header in lower case, for the fast path
	cookie string // cookie name; "" for a header rule
	value  string
	route  *route // nil when the revision has no backends: no effect
}

// requestView is what pick reads of a request, on either path.
type requestView interface {
	// revision returns the revision in the affinity cookie called name.
	revision(name string) (int, bool)
	// session returns the session bucket in that cookie, -1 for none.
	session(name string) int
	// matches reports whether the request satisfies m.
	matches(m *matchRule) bool
}

// compileMatches compiles the valid rules of ms. route returns the route
// with backends of a revision (creating it), or nil.
func compileMatches(ms []Match, route func(rev int) *route) []matchRule {
	var out []matchRule
	for _, m := range ms {
		if (m.Header == "") == (m.Cookie == "") {
			continue
		}
		rule := matchRule{cookie: m.Cookie, value: m.Value, route: route(m.Revision)}
		if m.Header != "" {
			rule.header = http.CanonicalHeaderKey(m.Header)
			rule.lower = strings.ToLower(m.Header)
		}
		out = append(out, rule)
	}
	return out
}

// matched returns the route of the first rule that req satisfies, or nil.
func (t *table) matched(req requestView) *route {
	for i := range t.matches {
		if m := &t.matches[i]; req.matches(m) {
			return m.route
		}
	}
	return nil
}

// netRequest is the view of a request on the net/http path.
type netRequest http.Request

func (r *netRequest) revision(name string) (int, bool) {
	return cookieRevision(r.Header, name)
}

func (r *netRequest) matches(m *matchRule) bool {
	switch {
	case m.cookie != "":
		for _, line := range r.Header["Cookie"] {
			if hasCookie(line, m.cookie, m.value) {
				return true
			}
		}
	case m.header == "Host":
		return r.Host == m.value
	default:
		for _, v := range r.Header[m.header] {
			if v == m.value {
				return true
			}
		}
	}
	return false
}

// matches reports whether the fast path's request satisfies m.
func (h *requestHead) matches(m *matchRule) bool {
	for i := range h.fields {
		f := &h.fields[i]
		if m.cookie != "" {
			if f.kind == kindCookie && hasCookie(f.value, m.cookie, m.value) {
				return true
			}
		} else if equalFold(f.name, m.lower) && equalText(f.value, m.value) {
			return true
		}
	}
	return false
}

// text is a field value: a string on the net/http path, the head's bytes on
// the fast path. Functions over it index and slice only, so neither path
// converts (or allocates).
type text interface{ ~string | ~[]byte }

// nextCookie splits the first cookie-pair off a Cookie field value. value
// loses one pair of surrounding double quotes; ok is false for a part
// without "=".
func nextCookie[T text](line T) (name, value, rest T, ok bool) {
	end := 0
	for end < len(line) && line[end] != ';' {
		end++
	}
	part := line[:end]
	rest = line[len(line):]
	if end < len(line) {
		rest = line[end+1:]
	}
	for len(part) > 0 && (part[0] == ' ' || part[0] == '\t') {
		part = part[1:]
	}
	for len(part) > 0 && (part[len(part)-1] == ' ' || part[len(part)-1] == '\t') {
		part = part[:len(part)-1]
	}
	eq := 0
	for eq < len(part) && part[eq] != '=' {
		eq++
	}
	if eq == len(part) {
		return name, value, rest, false
	}
	name, value = part[:eq], part[eq+1:]
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return name, value, rest, true
}

// hasCookie reports whether a Cookie field value holds a cookie called
// name with the given value.
func hasCookie[T text](line T, name, value string) bool {
	for len(line) > 0 {
		n, v, rest, ok := nextCookie(line)
		if ok && equalText(n, name) && equalText(v, value) {
			return true
		}
		line = rest
	}
	return false
}

// equalText reports whether a equals s.
func equalText[T text](a T, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if a[i] != s[i] {
			return false
		}
	}
	return true
}
