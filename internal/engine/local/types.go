package local

import (
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// Spec is what the engine needs to run replicas of one revision.
type Spec struct {
	App      string
	Revision int
	// Command is the argv, with artifact paths already substituted by the
	// caller. ${VAR} is expanded from Env plus PORT, LASTGOOD_APP and
	// LASTGOOD_REVISION; a reference to any other name is left as written.
	// It is exec'd directly, never through a shell. A program name without a
	// slash is looked up in PATH (Env's PATH when set); a relative path is
	// taken relative to Dir.
	Command []string
	Env     map[string]string
	// Dir is the working directory; empty means the engine's DataDir.
	Dir string
	// Readiness nil means a TCP connect probe (period 1s, timeout 1s,
	// failureThreshold 3, successThreshold 1). Liveness nil means none.
	Readiness, Liveness *manifest.Probe
}

// State is where a replica is in its life.
type State string

// Replica states.
const (
	StateStarting State = "starting" // process running, not yet ready
	StateReady    State = "ready"    // readiness passed successThreshold times in a row
	StateUnready  State = "unready"  // was ready, then failed readiness failureThreshold times
	StateCrashed  State = "crashed"  // exited on its own; waiting to restart
	StateStopping State = "stopping" // being stopped on purpose
)

// Replica is a snapshot of one replica.
type Replica struct {
	ID       string // "<app>-<rev>-<index>"
	App      string
	Revision int
	Index    int
	Addr     string // 127.0.0.1:port while a process runs, else empty
	PID      int    // 0 while no process runs
	State    State
	Ready    bool // State == StateReady
	Restarts int
	LastExit string // e.g. "exit status 1", "signal: killed; killed after failing its liveness probe"
	Started  time.Time
	LogPath  string
}

// Event types.
const (
	EventStarted        = "replica.started"
	EventReady          = "replica.ready"
	EventUnready        = "replica.unready"
	EventExited         = "replica.exited"
	EventRestarting     = "replica.restarting"
	EventLivenessFailed = "replica.liveness-failed"
	EventStopped        = "replica.stopped"
)

// Event is one replica lifecycle event.
//
// Data keys by type: started: pid, addr, restarts; exited: pid, status,
// exitCode (-1 when killed by a signal), uptime (seconds), logTail (the last
// lines of the log, []string); restarting: delay (seconds), restarts;
// liveness-failed and unready: error.
type Event struct {
	Time     time.Time
	App      string
	Revision int
	Replica  string
	Type     string
	Message  string
	Data     map[string]any
}
