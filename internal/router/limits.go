package router

import (
	"syscall"
	"time"
)

// Limits bound what one app's clients and replicas may hold of the router.
// A zero field takes its default (the Default* constants); docs/router.md
// describes each.
type Limits struct {
	// ResponseTimeout is how long the router waits, once a request has
	// reached the replica whole, for the start of its response (the status
	// line). After it the client gets 504 and the revision a failure.
	// Negative: no timeout.
	ResponseTimeout time.Duration
	// MaxConnections caps the client connections open at once. A
	// connection beyond it is answered 503 and closed. The cap is also
	// held under the process's share for one app (see FileShare).
	MaxConnections int
	// HeaderTimeout bounds the reading of a request head.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the reading of a whole request body, and
	// BodyIdleTimeout the wait for each next byte of it.
	BodyTimeout     time.Duration
	BodyIdleTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
	// Routes is how many path templates get counters of their own (see
	// PathTemplate); 0 takes DefaultRoutes, a negative value none, and
	// at most MaxRoutes. Slots are router-wide and kept once given: a
	// table with a smaller value gives no more.
	Routes int
}

// The defaults of Limits. manifest's router section has the same ones.
const (
	DefaultResponseTimeout = 30 * time.Second
	DefaultMaxConnections  = 4096
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultBodyTimeout     = 5 * time.Minute
	DefaultBodyIdleTimeout = 30 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
)

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ResponseTimeout, DefaultResponseTimeout)
	def(&l.HeaderTimeout, DefaultHeaderTimeout)
	def(&l.BodyTimeout, DefaultBodyTimeout)
	def(&l.BodyIdleTimeout, DefaultBodyIdleTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	return l
}

// limits is the compiled form of Limits that a table carries.
type limits struct {
	Limits
	// maxConns is MaxConnections held under the file share.
	maxConns int
}

func compileLimits(l Limits) *limits {
	l = l.withDefaults()
	return &limits{Limits: l, maxConns: min(l.MaxConnections, FileShare())}
}

// reservedFiles are the open files kept out of the routers' share: the
// store, logs, replicas' pipes, the API.
const reservedFiles = 256

// FileShare is the most client connections one app's router holds,
// whatever its MaxConnections: a quarter of the files this process may
// open beyond reservedFiles. A proxied connection holds two files (the
// client's and the replica's), so one app at its cap uses at most half of
// them and the other apps keep the rest. Go raises the soft RLIMIT_NOFILE
// to the hard limit when a program starts; FileShare reads the limit each
// time a table is set, so a limit changed since (prlimit) is followed.
func FileShare() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= 1<<30 {
		return DefaultMaxConnections
	}
	return max(int(lim.Cur)-reservedFiles, 64) / 4
}
