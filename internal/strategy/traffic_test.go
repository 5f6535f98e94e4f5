package strategy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func TestNoTrafficIsReportedOnceAndEndsAtTheProgressDeadline(t *testing.T) {
	for _, tc := range []struct {
		onNoData, trigger string
		goesOn            bool
	}{
		{NoDataWait, TriggerProgressDeadline, false},
		{NoDataFail, TriggerNoData, false},
		{NoDataPass, "", true},
	} {
		t.Run(tc.onNoData, func(t *testing.T) {
			// for 5s, maxWait 10 minutes, progress deadline 10s
			spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(5, 600), manifest.Step{SetWeight: ptr(50)})
			spec.OnNoData = tc.onNoData
			s, obs := canaryAt(t, spec)
			obs.Checks = looks(obs.Now, Inconclusive, Inconclusive, false)
			var all []Event
			var quietAt State
			for sec := 1; sec <= 9; sec++ {
				obs.Now = t0.Add(time.Duration(sec) * time.Second)
				var ev []Event
				s, ev = Next(spec, s, obs)
				all = append(all, ev...)
				if sec == 5 {
					quietAt = s
				}
			}
			if n := strings.Count(strings.Join(types(all), " "), "rollout.no-traffic"); n != 1 || !quietAt.NoTraffic {
				t.Fatalf("no-traffic reported %d times, state %+v; want once, at `for`", n, quietAt)
			}
			e := eventOf(all, "rollout.no-traffic")
			if !strings.Contains(e.Message, "no traffic to revision 2 for 5s (it has taken none yet)") || !strings.Contains(e.Message, "errors, latency") {
				t.Fatalf("message %q", e.Message)
			}
			if s.Phase != Progressing || s.Step != 1 {
				t.Fatalf("ended before the progress deadline: %+v", s)
			}
			obs.Now = t0.Add(10 * time.Second)
			s, ev := Next(spec, s, obs)
			switch {
			case tc.goesOn:
				if s.Step < 2 || s.Phase != Progressing || !slices.Contains(types(ev), "analysis.no-data") {
					t.Fatalf("onNoData pass at the deadline: %+v %v", s, types(ev))
				}
			default:
				if s.Phase != RolledBack || s.Trigger != tc.trigger || !strings.Contains(s.Reason, "no traffic to revision 2 for 10s") {
					t.Fatalf("at the deadline: %+v", s)
				}
			}
		})
	}
}

func TestTrafficClearsTheSilence(t *testing.T) {
	spec := canaryWithAnalysis(manifest.Step{SetWeight: ptr(10)}, analyzeStep(5, 600), manifest.Step{SetWeight: ptr(50)})
	s, obs := canaryAt(t, spec)
	obs.Checks = looks(obs.Now, Inconclusive, Inconclusive, false)
	obs.Now = t0.Add(6 * time.Second)
	s, _ = Next(spec, s, obs)
	if !s.NoTraffic {
		t.Fatalf("silence not seen: %+v", s)
	}
	// A trickle of requests: the silence ends, and the step waits for
	// data again without a deadline.
	obs.Now, obs.To.Requests = t0.Add(8*time.Second), 3
	s, ev := Next(spec, s, obs)
	if s.NoTraffic || !slices.Contains(types(ev), "rollout.traffic-resumed") {
		t.Fatalf("traffic did not clear the silence: %+v %v", s, types(ev))
	}
	for sec := 9; sec <= 60; sec += 4 {
		obs.Now, obs.To.Requests = t0.Add(time.Duration(sec)*time.Second), obs.To.Requests+1
		if s, ev = Next(spec, s, obs); s.Phase != Progressing || s.Step != 1 || len(ev) != 0 {
			t.Fatalf("at %ds with traffic: %+v %v", sec, s, types(ev))
		}
	}
	// Checks with data end the step whether or not traffic came.
	obs.Now = t0.Add(70 * time.Second)
	obs.Checks = looks(obs.Now, Inconclusive, Inconclusive, true)
	if s, ev = Next(spec, s, obs); s.Step < 2 || slices.Contains(types(ev), "rollout.no-traffic") {
		t.Fatalf("%+v %v", s, types(ev))
	}
}
