package router

import (
	"net/http"
	"strings"
)

// cookieRevision returns the revision number in the request's cookie called
// name, without the allocations of http.Request.Cookie.
func cookieRevision(h http.Header, name string) (int, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			value, ok := strings.CutPrefix(part, name)
			if !ok || !strings.HasPrefix(value, "=") {
				continue
			}
			return parseRevision(strings.Trim(value[1:], `"`))
		}
	}
	return 0, false
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
