package telemetry

import (
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/prometheustest"
)

// A real Prometheus scrapes the handler every second; PromQL over its HTTP
// API sees the rollback, the histograms and the router's counters.
func TestPrometheusScrapes(t *testing.T) {
	s := openStore(t)
	w := &writer{t: t, s: s, t0: time.Now().Add(-time.Hour).UTC()}
	last := scenario(w, nil)
	tel := New(testConfig(s))
	follow(t, tel)
	waitSeq(t, tel, last)
	srv := serve(t, tel)

	prom := prometheustest.Start(t, "lastgood", srv.Listener.Addr().String(), `lastgood_rollouts_total{app="web"}`)
	for _, c := range []struct {
		query    string
		min, max float64
	}{
		{`lastgood_rollbacks_total{app="web",trigger="analysis"}`, 1, 1},
		{`sum(lastgood_rollbacks_total)`, 3, 3},
		{`lastgood_time_to_detect_seconds_count{app="web"}`, 1, 1},
		{`lastgood_time_to_detect_seconds_sum{app="web"}`, 4, 4},
		{`lastgood_time_to_rollback_seconds_bucket{app="web",le="1"}`, 1, 1},
		{`lastgood_time_to_rollback_seconds_bucket{app="web",le="0.5"}`, 0, 0},
		{`lastgood_rollouts_ended_total{app="web",phase="promoted"}`, 1, 1},
		{`lastgood_rollout_phase{app="jobs",phase="progressing"}`, 1, 1},
		{`lastgood_traffic_weight{app="web",revision="3"}`, 20, 20},
		{`sum by (app) (lastgood_requests_total{app="web",code="5xx"})`, 1, 1},
		// three of four requests took 3ms or less: the median is in
		// (2.048ms, 4.096ms].
		{`histogram_quantile(0.5, sum by (le) (lastgood_request_duration_seconds_bucket{app="web",revision="3"}))`, 0.002048, 0.004096},
	} {
		got := prometheustest.Query(t, prom, c.query)
		if got < c.min || got > c.max {
			t.Errorf("%s = %v, want within [%v, %v]", c.query, got, c.min, c.max)
		}
	}
}
