package router

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Sessions. With session affinity a client's requests all go to one
// revision, so they are not independent draws: a client whose requests
// fail more than most fails them all on the revision it was given, and a
// test that counts requests as independent fails identical revisions
// more often than its α. The router therefore counts requests per
// session bucket too: a new session's affinity cookie carries, after the
// revision, one of SessionBuckets buckets ("3.17"), given in turn, and
// every request of the session is counted in its bucket. Whole sessions
// fall in each bucket, so the spread of the buckets' error rates measures
// how much the clustering inflates the variance (the design effect),
// which the analysis corrects for. A cookie without a bucket (set before
// buckets existed) counts in none, nor do requests that carry no cookie
// and get none (a match rule's).

// SessionBuckets is how many session buckets a revision's requests are
// counted in.
const SessionBuckets = 64

// SessionStats is what the router has counted of the sessions of one
// bucket on one revision.
type SessionStats struct {
	Bucket   int
	Requests uint64
	Errors   uint64 // as RevisionStats.Errors
	Status   [6]uint64
}

// sessionCounts are the live form of SessionStats.
type sessionCounts struct {
	requests atomic.Uint64
	errors   atomic.Uint64
	status   [6]atomic.Uint64
}

// recordSession counts a finished request in its session's bucket; a
// negative bucket is none.
func (s *revisionStats) recordSession(bucket, status int, failed bool) {
	if bucket < 0 || bucket >= SessionBuckets {
		return
	}
	b := &s.sessions[bucket]
	b.requests.Add(1)
	if class := status / 100; class >= 1 && class < len(b.status) {
		b.status[class].Add(1)
	}
	if status >= 500 || failed {
		b.errors.Add(1)
	}
}

func (s *revisionStats) snapshotSessions() []SessionStats {
	var out []SessionStats
	for i := range s.sessions {
		b := &s.sessions[i]
		n := b.requests.Load()
		if n == 0 {
			continue
		}
		st := SessionStats{Bucket: i, Requests: n, Errors: b.errors.Load()}
		for k := range b.status {
			st.Status[k] = b.status[k].Load()
		}
		out = append(out, st)
	}
	return out
}

// sessionCookies renders the Set-Cookie values of every bucket of rev.
func sessionCookies(name string, rev int, maxAge time.Duration) [][]string {
	out := make([][]string, SessionBuckets)
	for b := range out {
		c := http.Cookie{Name: name, Value: strconv.Itoa(rev) + "." + strconv.Itoa(b), Path: "/", HttpOnly: true}
		if maxAge > 0 {
			c.MaxAge = int(maxAge / time.Second)
		}
		out[b] = fullSlice(c.String())
	}
	return out
}

// sessionOf returns the session bucket of a request picked for rt: the
// one in its affinity cookie (also when the cookie's revision is gone and
// the session is picked again), else a new one, in turn, for a request
// that gets the cookie; -1 without affinity or without a bucket.
func (r *Router) sessionOf(req requestView, rt *route, setCookie bool) int {
	if rt.sessionCookies == nil {
		return -1
	}
	if name := r.table.Load().cookie; name != "" {
		if b := req.session(name); b >= 0 {
			return b
		}
	}
	if setCookie {
		return int((rt.stats.nextSession.Add(1) - 1) % SessionBuckets)
	}
	return -1
}

// cookie returns the Set-Cookie value the exchange's response carries.
func (ex *exchange) cookie() []string {
	if ex.session >= 0 && ex.session < len(ex.route.sessionCookies) {
		return ex.route.sessionCookies[ex.session]
	}
	return ex.route.setCookie
}

// session returns the bucket in the affinity cookie called name, -1 for
// none.
func (r *netRequest) session(name string) int {
	for _, line := range r.Header["Cookie"] {
		if b, found := cookieLineSession(line, name); found {
			return b
		}
	}
	return -1
}

// session returns the bucket in the affinity cookie called name, -1 for
// none.
func (h *requestHead) session(name string) int {
	for _, f := range h.fields {
		if f.kind != kindCookie {
			continue
		}
		if b, found := cookieLineSession(f.value, name); found {
			return b
		}
	}
	return -1
}

func cookieLineSession[T text](line T, name string) (bucket int, found bool) {
	for len(line) > 0 {
		n, v, rest, isPair := nextCookie(line)
		if isPair && equalText(n, name) {
			_, b, ok := parseAffinity(v)
			if !ok {
				return -1, true
			}
			return b, true
		}
		line = rest
	}
	return -1, false
}
