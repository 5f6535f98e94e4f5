package store

import (
	"encoding/json"
	"sync"
	"time"
)

// Health is what the store knows of its own state: whether it takes
// writes, whether the last ones failed and since when, and its reserve.
// /readyz, `lastgood status` and the dashboard show it.
type Health struct {
	// ReadOnly says why the store takes no writes; empty when it does.
	ReadOnly string `json:"readOnly,omitempty"`
	// Damage lists what the integrity check at start found.
	Damage []string `json:"damage,omitempty"`
	// WriteError is the error of the last write when it failed for the
	// database's sake (disk full, I/O error, damage), cleared by the next
	// write that succeeds; FailingSince and FailedWrites count from the
	// first of the failures in a row.
	WriteError   string     `json:"writeError,omitempty"`
	FailingSince *time.Time `json:"failingSince,omitempty"`
	FailedWrites int        `json:"failedWrites,omitempty"`
	// Reserve describes the reserve file: in place, given up, or none.
	Reserve string `json:"reserve,omitempty"`
	// AnchorError is the error of the last write of the anchor file.
	AnchorError string `json:"anchorError,omitempty"`
}

// OK reports whether the store is taking writes without trouble.
func (h Health) OK() bool {
	return h.ReadOnly == "" && h.WriteError == ""
}

// health is Health behind its own lock: Update changes it under the write
// lock, readers take it from any goroutine.
type health struct {
	mu sync.Mutex
	h  Health
}

// observe records the outcome of one Update.
func (hs *health) observe(err error, at time.Time) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	switch {
	case err == nil:
		hs.h.WriteError, hs.h.FailingSince, hs.h.FailedWrites = "", nil, 0
	case isStorageError(err):
		hs.h.WriteError = err.Error()
		hs.h.FailedWrites++
		if hs.h.FailingSince == nil {
			hs.h.FailingSince = &at
		}
	}
}

func (hs *health) setReserve(s string) {
	hs.mu.Lock()
	hs.h.Reserve = s
	hs.mu.Unlock()
}

func (hs *health) setReadOnly(why string, damage []string) {
	hs.mu.Lock()
	hs.h.ReadOnly, hs.h.Damage = why, damage
	hs.mu.Unlock()
}

// Health reports the store's state now.
func (s *Store) Health() Health {
	s.health.mu.Lock()
	h := s.health.h
	s.health.mu.Unlock()
	h.Damage = append([]string(nil), h.Damage...)
	if s.readOnly != nil && h.ReadOnly == "" {
		h.ReadOnly = s.readOnly.Error()
	}
	if s.anchor != nil {
		if err := s.anchor.lastError(); err != nil {
			h.AnchorError = err.Error()
		}
	}
	return h
}

func mustData(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps of plain values
	}
	return b
}
