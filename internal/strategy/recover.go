package strategy

import (
	"fmt"
	"time"
)

// EventRecovered is the type of every event that records a decision taken
// because lastgood restarted.
const EventRecovered = "controller.recovered"

// Recover decides, at now, a rollout that lastgood finds in its store when
// it starts again, after a crash, a kill -9 or a stop. The replicas the
// previous process ran are gone with it, and so are the observations the
// rollout was judged on.
//
//   - A first release resumes: there is nothing to return to. Its progress
//     deadline starts again.
//   - Any other unfinished rollout is rolled back with TriggerRestart.
//   - A promoted rollout inside its rollback window stays promoted: its
//     replicas and the warm revision's start again, and the promoted
//     revision's get spec.ReadinessGrace to become ready before the
//     window's readiness rule applies. Its window starts again (it ends a
//     full window after now, if that is later): the promoted revision runs
//     new processes, and a release that fails after some time up must be
//     caught after a restart as after its promotion. Restarts counted
//     before the restart still count. Its statistical checks (compare,
//     threshold) are not armed again (the controller leaves them out): their
//     evidence was in memory, and a fresh test would spend a second α on
//     the same release. Without them the holdback has nothing to serve,
//     so it ends: all traffic goes to the promoted revision.
//   - Any other ended rollout needs no decision.
//
// Every decision comes with an EventRecovered event first.
func Recover(spec Spec, s State, now time.Time) (State, []Event) {
	switch {
	case s.Phase.Final() && InWindow(s, now):
		s.Recovered, s.RestartsSeen = now, 0
		if end := now.Add(spec.Window); end.After(s.WarmUntil) {
			s.WarmUntil = end
		}
		msg := fmt.Sprintf("lastgood restarted %s after revision %d was promoted, inside its rollback window: "+
			"it stays promoted, and its window starts again: revision %d is warm again until %s",
			now.Sub(s.Ended).Round(time.Millisecond), s.To, s.From, s.WarmUntil.UTC().Format(time.RFC3339))
		if judged(s) {
			msg += fmt.Sprintf("; its replicas start again and have %s (readiness grace) to become ready", spec.ReadinessGrace)
			if spec.Checks > 0 {
				msg += "; its compare and threshold checks, if any, are not re-armed (their evidence was not kept, and a fresh test would spend α again)"
			}
		}
		if s.Holdback > 0 {
			msg += fmt.Sprintf("; the %d%% held back on revision %d moves to revision %d", s.Holdback, s.From, s.To)
			s.Holdback = 0
		}
		return s, []Event{{Type: EventRecovered, Message: msg}}
	case s.Phase.Final():
		return s, nil
	case s.Kind == Initial:
		s.Progressed, s.StepStarted, s.LastReady = now, now, 0
		s.RestartsSeen = 0
		return s, []Event{{Type: EventRecovered,
			Message: fmt.Sprintf("lastgood restarted during the first release of revision %d: resuming it", s.To)}}
	}
	from := s.From
	s, ev := RollBack(spec, s, now, TriggerRestart, "lastgood restarted during the rollout; its observations are gone")
	return s, append([]Event{{Type: EventRecovered,
		Message: fmt.Sprintf("lastgood restarted during the rollout to revision %d: rolling back to revision %d", s.To, from)}}, ev...)
}
