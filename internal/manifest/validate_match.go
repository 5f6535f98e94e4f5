package manifest

import (
	"net/textproto"
	"strings"
)

// unmatchableHeaders are the request headers a canary.match rule cannot
// use, with the reason.
var unmatchableHeaders = map[string]string{
	"Host":              "it names the site the request is for, not who sent it; use a header of your own, like X-Canary",
	"Cookie":            "to match a cookie, write a cookie rule: - cookie: {name: canary, value: \"1\"}",
	"Content-Length":    "it describes how the body is framed, not who sent the request; use a header of your own, like X-Canary",
	"Transfer-Encoding": "it describes how the body is framed, not who sent the request; use a header of your own, like X-Canary",
	"Connection":        "it is hop-by-hop: a proxy in front of lastgood may drop or change it; use a header of your own, like X-Canary",
}

// match checks strategy.canary.match. affinity is the app's session
// affinity, whose cookie lastgood sets itself.
func (v *validator) match(rules []Match, affinity *SessionAffinity) {
	first := map[string]int{} // "header Name=value" → its first rule
	for i, m := range rules {
		path := index("strategy.canary.match", i)
		var key string
		switch set := setNames([]string{"header", "cookie"}, []bool{m.Header != nil, m.Cookie != nil}); len(set) {
		case 0:
			v.fail(path, "set one of header and cookie, like - header: {name: X-Canary, value: always}")
			continue
		case 1:
		default:
			v.fail(path, "set only one of header and cookie in a rule; got %s (write two rules to accept either)", list(set))
			continue
		}
		if h := m.Header; h != nil {
			v.matchHeader(path+".header", h)
			key = "header " + textproto.CanonicalMIMEHeaderKey(h.Name) + "=" + h.Value
		}
		if c := m.Cookie; c != nil {
			v.matchCookie(path+".cookie", c, affinity)
			key = "cookie " + c.Name + "=" + c.Value
		}
		if j, dup := first[key]; dup {
			v.fail(path, "is the same rule as match[%d]", j)
		} else {
			first[key] = i
		}
	}
}

func (v *validator) matchHeader(path string, h *NameValue) {
	switch reason, reserved := unmatchableHeaders[textproto.CanonicalMIMEHeaderKey(h.Name)]; {
	case h.Name == "":
		v.fail(path+".name", "is required: the request header to match, like X-Canary")
	case !validToken(h.Name):
		v.fail(path+".name", "must be a header name: letters, digits and !#$%%&'*+-.^_`|~, got %q", h.Name)
	case reserved:
		v.fail(path+".name", "cannot match on %s: %s", h.Name, reason)
	}
	switch {
	case h.Value == "":
		v.fail(path+".value", "is required: the exact value the header must have")
	case strings.ContainsFunc(h.Value, func(r rune) bool { return r != '\t' && (r < ' ' || r == 0x7f) }):
		v.fail(path+".value", "must not contain control characters, got %q", h.Value)
	case strings.TrimSpace(h.Value) != h.Value:
		v.fail(path+".value", "must not start or end with spaces: HTTP drops them, so the rule would never match, got %q", h.Value)
	}
}

func (v *validator) matchCookie(path string, c *NameValue, affinity *SessionAffinity) {
	switch {
	case c.Name == "":
		v.fail(path+".name", "is required: the cookie to match, like canary")
	case !validToken(c.Name):
		v.fail(path+".name", "must be a cookie name: letters, digits and !#$%%&'*+-.^_`|~, got %q", c.Name)
	case affinity != nil && c.Name == affinity.CookieName:
		v.fail(path+".name", "must differ from sessionAffinity.cookieName (%s): lastgood sets that cookie itself", affinity.CookieName)
	}
	switch {
	case c.Value == "":
		v.fail(path+".value", "is required: the exact value the cookie must have")
	case !validCookieValue(c.Value):
		v.fail(path+".value", "must be a cookie value: printable ASCII without spaces and without \" , ; or \\, got %q", c.Value)
	}
}

// validCookieValue reports whether s is made of RFC 6265 cookie-octets.
func validCookieValue(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`",;\`, r) {
			return false
		}
	}
	return true
}
