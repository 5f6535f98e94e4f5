package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// failure is one failed request.
type failure struct {
	At    time.Duration // since the load started
	Phase string
	What  string // the error or the status line
}

// loadResult is what the whole run of the load saw.
type loadResult struct {
	Rate     float64
	Sent     int
	Elapsed  time.Duration
	ByRev    map[int]int // successful answers by revision
	Failures []failure
	Latency  []time.Duration // from the moment each request was due, after the warm-up
	Slow     []slow
	Warmup   time.Duration
	Late     int // sent more than a millisecond after it was due, after the warm-up
	MaxLate  time.Duration
}

// slowRequest is the latency beyond which a load request is listed by
// phase.
const slowRequest = 20 * time.Millisecond

// slow is a load request slower than slowRequest.
type slow struct {
	Phase   string
	Latency time.Duration
}

// summarize counts the load's responses. Requests due in the warm-up count
// as sent and failed, but not in latency and lateness (every worker opens
// its connection then).
func summarize(run harness.LoadRun, warmup time.Duration) loadResult {
	r := loadResult{Rate: run.Rate, Elapsed: run.Elapsed, ByRev: map[int]int{}, Warmup: warmup, Sent: len(run.Responses)}
	for _, x := range run.Responses {
		measured := x.Due >= warmup
		if late := x.Sent - x.Due; measured && late > time.Millisecond {
			r.Late++
			r.MaxLate = max(r.MaxLate, late)
		}
		if x.Status != 0 && measured {
			r.Latency = append(r.Latency, x.Latency())
			if x.Latency() > slowRequest {
				r.Slow = append(r.Slow, slow{Phase: x.Phase, Latency: x.Latency()})
			}
		}
		switch {
		case x.Err != "":
			r.Failures = append(r.Failures, failure{At: x.Done, Phase: x.Phase, What: x.Err})
		case x.Status != http.StatusOK:
			r.Failures = append(r.Failures, failure{At: x.Done, Phase: x.Phase, What: fmt.Sprintf("%d %s", x.Status, http.StatusText(x.Status))})
		default:
			r.ByRev[x.Revision]++
		}
	}
	return r
}
