package router

import (
	"net/http"
)

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
func cookieLineRevision[T text](line T, name string) (rev int, ok, found bool) {
	for len(line) > 0 {
		n, v, rest, isPair := nextCookie(line)
		if isPair && equalText(n, name) {
			rev, ok := parseRevision(v)
			return rev, ok, true
		}
		line = rest
	}
	return 0, false, false
}

// parseRevision parses a positive decimal revision number of at most nine
// digits.
func parseRevision[T text](s T) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
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
