package incident

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/redact"
)

// EngineEvidence is what the engine that ran the failed revision can tell
// of it beyond the controller's replicas, asked for when the bundle is
// written (Config.Evidence). On Kubernetes: its pods' statuses, its
// containers' last terminations, the Events of its objects, and (in the
// bundle's Logs) the last lines of its failed containers.
type EngineEvidence struct {
	Engine   string          `json:"engine"`
	Replicas []ReplicaStatus `json:"replicas"`
	Events   []EngineEvent   `json:"events"`
	// Warnings say what could not be gathered.
	Warnings []string `json:"warnings,omitempty"`
}

// ReplicaStatus is one replica (a pod) of the failed revision as the
// engine last saw it.
type ReplicaStatus struct {
	Name    string `json:"name"`
	Phase   string `json:"phase,omitempty"`
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Gone says the replica no longer existed when the bundle was written:
	// what is shown is the engine's last sight of it.
	Gone bool `json:"gone,omitempty"`
	// Conditions are "Type=Status (Reason)", e.g. "Ready=False (ContainersNotReady)".
	Conditions []string          `json:"conditions,omitempty"`
	Containers []ContainerStatus `json:"containers,omitempty"`
}

// ContainerStatus is one container of a replica.
type ContainerStatus struct {
	Name     string `json:"name"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	// State is "running", "waiting: CrashLoopBackOff: back-off …" or
	// "terminated: Error (exit code 1)".
	State           string       `json:"state"`
	LastTermination *Termination `json:"lastTermination,omitempty"`
}

// Termination is how a container last ended.
type Termination struct {
	Reason   string  `json:"reason,omitempty"`
	ExitCode int     `json:"exitCode"`
	Signal   int     `json:"signal,omitempty"`
	Message  string  `json:"message,omitempty"`
	Started  *Millis `json:"started,omitempty"`
	Finished *Millis `json:"finished,omitempty"`
}

// EngineEvent is one event the engine's platform recorded about the
// failed revision's objects (a Kubernetes Event).
type EngineEvent struct {
	At      Millis `json:"at"`
	Type    string `json:"type,omitempty"` // Normal, Warning
	Reason  string `json:"reason"`
	Object  string `json:"object"` // kind/name
	Message string `json:"message"`
	Count   int    `json:"count,omitempty"`
	Source  string `json:"source,omitempty"`
}

// Evidence is the engine's hook: what it knows of one revision of an
// app (nil when nothing), and log tails of its failed replicas to add to
// the bundle's Logs. It must return within ctx.
type Evidence func(ctx context.Context, app string, revision int) (*EngineEvidence, []Log)

// evidenceTimeout bounds the engine's hook.
const evidenceTimeout = 20 * time.Second

// engineEvidence asks the engine about the failed revision, redacting
// everything it says.
func (r *Recorder) engineEvidence(ctx context.Context, inc *Incident) {
	if r.cfg.Evidence == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, evidenceTimeout)
	defer cancel()
	ev, logs := r.cfg.Evidence(ctx, inc.App, inc.To)
	if len(logs) > maxLogFiles {
		inc.Warnings = append(inc.Warnings, fmt.Sprintf("%d container logs from the engine; kept the first %d", len(logs), maxLogFiles))
		logs = logs[:maxLogFiles]
	}
	for _, l := range logs {
		if len(l.Lines) > maxLogLines {
			l.Lines, l.Truncated = l.Lines[len(l.Lines)-maxLogLines:], true
		}
		lines := make([]string, len(l.Lines))
		for i, s := range l.Lines {
			lines[i] = redact.Text(truncate(s, maxLineBytes))
		}
		l.Lines, l.Error = lines, redact.Text(l.Error)
		inc.Logs = append(inc.Logs, l)
	}
	if ev == nil {
		return
	}
	for i := range ev.Replicas {
		p := &ev.Replicas[i]
		p.Message = redact.Text(p.Message)
		for j := range p.Containers {
			c := &p.Containers[j]
			c.State = redact.Text(c.State)
			if t := c.LastTermination; t != nil {
				t.Message = redact.Text(t.Message)
			}
		}
	}
	for i := range ev.Events {
		ev.Events[i].Message = redact.Text(ev.Events[i].Message)
	}
	for i, w := range ev.Warnings {
		ev.Warnings[i] = redact.Text(w)
	}
	inc.Engine = ev
}

// markdownEngine writes the engine's evidence.
func (in *Incident) markdownEngine(b *strings.Builder) {
	ev := in.Engine
	if ev == nil {
		return
	}
	fmt.Fprintf(b, "\n## Replicas of revision %d (%s)\n\n| replica | phase | ready | containers |\n|---|---|---|---|\n", in.To, ev.Engine)
	for _, p := range ev.Replicas {
		phase := p.Phase
		if p.Reason != "" {
			phase += " (" + p.Reason + ")"
		}
		if p.Gone {
			phase += ", gone"
		}
		var cs []string
		for _, c := range p.Containers {
			s := fmt.Sprintf("%s: %s, %d restarts", c.Name, c.State, c.Restarts)
			if t := c.LastTermination; t != nil {
				s += fmt.Sprintf("; last ended %s (exit code %d)", t.Reason, t.ExitCode)
			}
			cs = append(cs, s)
		}
		fmt.Fprintf(b, "| %s | %s | %v | %s |\n", cell(p.Name), cell(phase), p.Ready, cell(strings.Join(cs, "; ")))
	}
	if len(ev.Events) > 0 {
		fmt.Fprintf(b, "\n## Events of revision %d (%s)\n\n| time | type | reason | object | message |\n|---|---|---|---|---|\n", in.To, ev.Engine)
		for _, e := range ev.Events {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", stamp(e.At.Time), e.Type, cell(e.Reason), cell(e.Object), cell(e.Message))
		}
	}
	for _, w := range ev.Warnings {
		fmt.Fprintf(b, "\n> %s\n", w)
	}
}
