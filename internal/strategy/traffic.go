package strategy

import (
	"fmt"
	"strings"
	"time"
)

// A canary step that waits for data while its new revision takes no
// request would wait in silence, possibly for ever (onNoData: wait). So
// lastgood watches the router's request count of the new revision: an
// analyze step past its `for` that still lacks data and has seen no
// request to it for `for` says so once ("no traffic to revision N"), and
// once no request has come for the progress deadline the step ends as
// rollback.onNoData says — `wait` rolls back, with trigger
// progressDeadline, since no request would ever bring the data.

// seeTraffic notes when To's request count last grew; a request clears a
// reported silence.
func seeTraffic(s State, obs Observation) (State, []Event) {
	if obs.To.Requests == s.TrafficSeen {
		return s, nil
	}
	s.TrafficSeen, s.TrafficAt = obs.To.Requests, obs.Now
	if !s.NoTraffic {
		return s, nil
	}
	s.NoTraffic = false
	return s, []Event{{Type: "rollout.traffic-resumed", Message: fmt.Sprintf("revision %d takes traffic again", s.To)}}
}

// quiet is how long the current step has gone without a request to To.
func quiet(s State, now time.Time) time.Duration {
	since := s.StepStarted
	if s.TrafficAt.After(since) {
		since = s.TrafficAt
	}
	return now.Sub(since)
}

// noTraffic reports, once, that an analyze step past its `for` lacks data
// and To has taken no request for `for`.
func noTraffic(s State, obs Observation, for_ time.Duration, missing []string) (State, []Event) {
	if s.NoTraffic || quiet(s, obs.Now) < for_ {
		return s, nil
	}
	s.NoTraffic = true
	last := "it has taken none yet"
	if !s.TrafficAt.IsZero() {
		last = "its last request was at " + s.TrafficAt.UTC().Format(time.RFC3339)
	}
	return s, []Event{{Type: "rollout.no-traffic", Message: fmt.Sprintf("step %d: no traffic to revision %d for %s (%s); checks without enough data: %s",
		s.Step+1, s.To, quiet(s, obs.Now).Round(time.Second), last, strings.Join(missing, ", "))}}
}

// quietTooLong reports whether a reported silence has lasted the progress
// deadline.
func quietTooLong(spec Spec, s State, obs Observation) bool {
	return s.NoTraffic && spec.ProgressDeadline > 0 && quiet(s, obs.Now) >= spec.ProgressDeadline
}
