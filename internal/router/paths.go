package router

import (
	"sync"
	"sync/atomic"
)

// Per-route counters. The router counts requests, status codes and
// latency per path template as well as per revision, so that a compare
// check can judge each route on its own: errors on a path that carries 1%
// of the traffic vanish in the pooled error rate but not in the path's.
//
// A path template is the request path with the query cut off and every
// segment that looks like an identifier folded to ":id" (PathTemplate).
// Cardinality is bounded: the router gives its own counters to at most
// Limits.Routes templates (DefaultRoutes), and counts every other request
// under OtherRoute. A template gets counters once it has been seen
// promoteAfter times, counted by a Space-Saving sketch of candidates
// (Metwally, Agrawal & El Abbadi 2005), so the templates that win the
// slots are the busiest ones and a scanner's one-off paths never do. A
// template keeps its slot for the router's lifetime: its counters are
// cumulative, as the judge needs, and requests it had before it won the
// slot stay in OtherRoute's.

// OtherRoute names the counters of every request whose path template has
// no slot of its own.
const OtherRoute = "other"

// DefaultRoutes is how many path templates get their own counters when
// Limits.Routes is zero. MaxRoutes bounds Limits.Routes.
const (
	DefaultRoutes = 20
	MaxRoutes     = 100
)

const (
	// maxTemplate bounds a template's length; a longer path counts as
	// OtherRoute.
	maxTemplate = 128
	// promoteAfter is how many requests a template needs (a lower bound,
	// net of the sketch's overestimate) before it gets a slot.
	promoteAfter = 10
	// candidates is the size of the sketch: any template with more than
	// 1/candidates of the untracked traffic is sure to be in it.
	candidates = 256
)

// PathTemplate returns the template of a request target (origin form:
// the path and an optional query) appended to dst: the path up to the
// first '?' or '#', with every segment that is an identifier replaced by
// ":id". A segment is an identifier when it is all digits, a UUID, at
// least 8 hexadecimal digits with a digit among them, or 20 or more
// letters, digits, '-' and '_' mixing digits and letters (a token). It
// returns dst unchanged (and false) for a target that is not a path or
// whose template would be longer than maxTemplate bytes.
func PathTemplate(dst []byte, target []byte) ([]byte, bool) {
	n0 := len(dst)
	if len(target) == 0 || target[0] != '/' {
		return dst, false
	}
	end := len(target)
	for i, c := range target {
		if c == '?' || c == '#' {
			end = i
			break
		}
	}
	path := target[:end]
	for i := 0; i < len(path); {
		// path[i] is '/'.
		j := i + 1
		for j < len(path) && path[j] != '/' {
			j++
		}
		seg := path[i+1 : j]
		dst = append(dst, '/')
		if isIdentifier(seg) {
			dst = append(dst, ":id"...)
		} else {
			dst = append(dst, seg...)
		}
		if len(dst)-n0 > maxTemplate {
			return dst[:n0], false
		}
		i = j
	}
	return dst, true
}

// isIdentifier reports whether a path segment names one thing among many
// (see PathTemplate).
func isIdentifier(seg []byte) bool {
	if len(seg) == 0 {
		return false
	}
	digits, hex, token, letters := 0, 0, 0, 0
	for _, c := range seg {
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
			token++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
			token++
			letters++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			token++
			letters++
		case c == '-' || c == '_':
			token++
		}
	}
	n := len(seg)
	switch {
	case digits == n:
		return true
	case isUUID(seg):
		return true
	case hex == n && n >= 8 && digits > 0:
		return true
	case token == n && n >= 20 && digits > 0 && letters > 0:
		return true
	}
	return false
}

// isUUID reports whether seg is 8-4-4-4-12 hexadecimal digits.
func isUUID(seg []byte) bool {
	if len(seg) != 36 {
		return false
	}
	for i, c := range seg {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// paths assigns path templates to route slots, router-wide, so that every
// revision counts the same template in the same slot. Slot 0 is
// OtherRoute. The slot table is immutable behind an atomic pointer: the
// request path looks a template up without a lock, and takes the lock
// only for a template without a slot while slots are free.
type paths struct {
	slots atomic.Pointer[slotTable]
	limit atomic.Int64 // templates that may get a slot

	mu     sync.Mutex
	sketch map[string]*candidate
}

type slotTable struct {
	index map[string]int // template → slot (≥ 1)
	names []string       // slot → template; names[0] is OtherRoute
}

type candidate struct{ count, over uint64 }

func newPaths(limit int) *paths {
	p := &paths{sketch: map[string]*candidate{}}
	p.slots.Store(&slotTable{index: map[string]int{}, names: []string{OtherRoute}})
	p.setLimit(limit)
	return p
}

// setLimit sets how many templates may have slots; 0 takes DefaultRoutes
// and a negative limit none. Slots already given are kept.
func (p *paths) setLimit(limit int) {
	switch {
	case limit == 0:
		limit = DefaultRoutes
	case limit < 0:
		limit = 0
	}
	p.limit.Store(int64(min(limit, MaxRoutes)))
}

// slot returns the slot that counts a request with this target.
func (p *paths) slot(target []byte) int {
	var buf [maxTemplate + 8]byte
	tpl, ok := PathTemplate(buf[:0], target)
	if !ok {
		return 0
	}
	t := p.slots.Load()
	if i, ok := t.index[string(tpl)]; ok {
		return i
	}
	if int64(len(t.names)-1) >= p.limit.Load() {
		return 0
	}
	return p.offer(tpl)
}

// offer counts one request of a template without a slot in the sketch,
// and gives it a slot once it has promoteAfter requests for sure.
func (p *paths) offer(tpl []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.slots.Load()
	if i, ok := t.index[string(tpl)]; ok {
		return i
	}
	c := p.sketch[string(tpl)]
	if c == nil {
		c = &candidate{}
		if len(p.sketch) >= candidates {
			// Space-Saving: the new template replaces the least counted
			// one and inherits its count as a possible overestimate.
			var minKey string
			var least *candidate
			for k, v := range p.sketch {
				if least == nil || v.count < least.count {
					minKey, least = k, v
				}
			}
			delete(p.sketch, minKey)
			c.count, c.over = least.count, least.count
		}
		p.sketch[string(tpl)] = c
	}
	c.count++
	if c.count-c.over < promoteAfter || int64(len(t.names)-1) >= p.limit.Load() {
		return 0
	}
	delete(p.sketch, string(tpl))
	next := &slotTable{index: make(map[string]int, len(t.index)+1), names: append(t.names[:len(t.names):len(t.names)], string(tpl))}
	for k, v := range t.index {
		next.index[k] = v
	}
	i := len(next.names) - 1
	next.index[string(tpl)] = i
	p.slots.Store(next)
	return i
}

// names returns the template of each slot.
func (p *paths) names() []string { return p.slots.Load().names }
