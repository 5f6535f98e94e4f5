package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logEvery is how often, at most, one kind of failure that repeats is
// logged again; what is left out in between is counted in the next line.
const logEvery = 30 * time.Second

// limitedLog logs a failure that repeats at every tick (a store that
// cannot write, a damaged revision) once, then at most every logEvery
// with the count of what it left out, and once more when it stops.
type limitedLog struct {
	mu      sync.Mutex
	failing map[string]*failure
}

type failure struct {
	logged     time.Time
	suppressed int
	since      time.Time
}

func (l *limitedLog) warn(log *slog.Logger, key, msg string, args ...any) {
	l.log(log, slog.LevelWarn, key, msg, args)
}

func (l *limitedLog) error(log *slog.Logger, key, msg string, args ...any) {
	l.log(log, slog.LevelError, key, msg, args)
}

func (l *limitedLog) log(log *slog.Logger, level slog.Level, key, msg string, args []any) {
	l.mu.Lock()
	now := time.Now()
	if l.failing == nil {
		l.failing = map[string]*failure{}
	}
	f := l.failing[key]
	switch {
	case f == nil:
		l.failing[key] = &failure{logged: now, since: now}
	case now.Sub(f.logged) < logEvery:
		f.suppressed++
		l.mu.Unlock()
		return
	default:
		args = append(args, "repeated", f.suppressed+1, "since", f.since.UTC().Format(time.RFC3339))
		f.logged, f.suppressed = now, 0
	}
	l.mu.Unlock()
	log.Log(context.Background(), level, msg, args...)
}

// ok ends a failure of key: when one was logged, msg says it is over.
func (l *limitedLog) ok(log *slog.Logger, key, msg string, args ...any) {
	l.mu.Lock()
	f := l.failing[key]
	delete(l.failing, key)
	l.mu.Unlock()
	if f != nil {
		log.Info(msg, append(args, "failingFor", time.Since(f.since).Round(time.Millisecond).String())...)
	}
}
