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

// parseRevision parses an affinity cookie's value: a positive decimal
// revision number of at most nine digits, optionally followed by '.' and
// the session's bucket (see sessions.go).
func parseRevision[T text](s T) (int, bool) {
	rev, _, ok := parseAffinity(s)
	return rev, ok
}

// parseAffinity parses "REV" or "REV.BUCKET"; bucket is -1 without one.
func parseAffinity[T text](s T) (rev, bucket int, ok bool) {
	bucket = -1
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			end = i
			b, ok := parseDigits(s, i+1, len(s), 2)
			if !ok || b >= SessionBuckets {
				return 0, -1, false
			}
			bucket = b
			break
		}
	}
	n, ok := parseDigits(s, 0, end, 9)
	if !ok || n == 0 {
		return 0, -1, false
	}
	return n, bucket, true
}

// parseDigits parses s[from:to] as 1 to most decimal digits.
func parseDigits[T text](s T, from, to, most int) (int, bool) {
	if to <= from || to-from > most {
		return 0, false
	}
	n := 0
	for i := from; i < to; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
