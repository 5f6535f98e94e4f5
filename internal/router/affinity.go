package router

import (
	"net/http"
	"strings"
)

// cookieJar finds the revision in a request's affinity cookie.
type cookieJar interface {
	revision(name string) (int, bool)
}

// headerCookies is the cookie jar of a net/http request.
type headerCookies http.Header

func (h headerCookies) revision(name string) (int, bool) {
	return cookieRevision(http.Header(h), name)
}

// cookieRevision returns the revision number in the request's cookie called
// name, without the allocations of http.Request.Cookie.
func cookieRevision(h http.Header, name string) (int, bool) {
	for _, line := range h["Cookie"] {
		if rev, ok, found := cookieLineRevision(line, name); found {
			return rev, ok
		}
	}
	return 0, false
}

// cookieLineRevision looks for the cookie called name in one Cookie field
// value. found reports that the cookie is there; ok that its value is a
// revision number.
func cookieLineRevision(line, name string) (rev int, ok, found bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = strings.TrimSpace(part)
		value, ok := strings.CutPrefix(part, name)
		if !ok || !strings.HasPrefix(value, "=") {
			continue
		}
		rev, ok := parseRevision(strings.Trim(value[1:], `"`))
		return rev, ok, true
	}
	return 0, false, false
}

// parseRevision parses a positive decimal revision number of at most nine
// digits.
func parseRevision(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}
