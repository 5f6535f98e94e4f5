package telemetry

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	descWeight = prometheus.NewDesc("lastgood_traffic_weight",
		"Share of the app's traffic the router sends to the revision, in percent.",
		[]string{"app", "revision"}, nil)
	descPhase = prometheus.NewDesc("lastgood_rollout_phase",
		"1 for the phase of the app's latest rollout, 0 for the other phases.",
		[]string{"app", "phase"}, nil)
	descRequests = prometheus.NewDesc("lastgood_requests_total",
		"Requests the router completed for the revision, by status class (client aborts count as 4xx).",
		[]string{"app", "revision", "code"}, nil)
	descDuration = prometheus.NewDesc("lastgood_request_duration_seconds",
		"Latency of the router's requests to the revision; the sum is estimated from bucket midpoints.",
		[]string{"app", "revision"}, nil)
)

// phases are the values of lastgood_rollout_phase's phase label.
var phases = []string{store.PhaseProgressing, store.PhasePaused, store.PhasePromoted, store.PhaseRolledBack, store.PhaseAborted}

// scrapeCollector reads the current state when Prometheus scrapes.
type scrapeCollector struct {
	cfg Config
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWeight
	ch <- descPhase
	ch <- descRequests
	ch <- descDuration
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPhase, err)
		return
	}
	for _, a := range apps {
		c.phase(ctx, ch, a.Name)
		if c.cfg.Weights != nil {
			weights(ch, a.Name, c.cfg.Weights(a.Name))
		}
		if c.cfg.Stats != nil {
			for _, st := range c.cfg.Stats(a.Name) {
				requests(ch, a.Name, st)
			}
		}
	}
}

func (c *scrapeCollector) phase(ctx context.Context, ch chan<- prometheus.Metric, app string) {
	ros, err := c.cfg.Store.Rollouts(ctx, app, 1)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPhase, err)
		return
	}
	current := ""
	if len(ros) > 0 {
		current = ros[0].Phase
	}
	for _, p := range phases {
		v := 0.0
		if p == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descPhase, prometheus.GaugeValue, v, app, p)
	}
}

// weights exports each revision's share of the total weight, so relative
// weights (percentages, or ready replica counts) read the same.
func weights(ch chan<- prometheus.Metric, app string, ws map[int]int) {
	total := 0
	for _, w := range ws {
		total += max(w, 0)
	}
	for rev, w := range ws {
		share := 0.0
		if total > 0 && w > 0 {
			share = 100 * float64(w) / float64(total)
		}
		ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, share, app, strconv.Itoa(rev))
	}
}

// codeClasses are the status classes always exported; 1xx only when seen.
var codeClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func requests(ch chan<- prometheus.Metric, app string, st router.RevisionStats) {
	rev := strconv.Itoa(st.Revision)
	for i, code := range codeClasses {
		n := st.Status[i+1]
		if i == 0 && n == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), app, rev, code)
	}
	count, sum, buckets := promBuckets(st.Latency)
	ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, app, rev)
}

// promBuckets converts a router histogram to a Prometheus one over coarser
// bounds: the router's powers of two, 2^10 µs (1.024 ms) to 2^24 µs
// (about 16.8 s), each of which is a bucket edge of the router's
// log-linear layout, so every cumulative count is exact — no
// interpolation. The router's buckets are half-open [lo, hi) while
// Prometheus' are "le": an observation exactly on an edge counts one
// bucket higher, which nanosecond latencies make immaterial. The sum is
// estimated from each router bucket's midpoint (the lower bound for the
// open-ended last one). The keys of buckets are upper bounds in seconds;
// +Inf is implied by count.
func promBuckets(h router.Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(exportBounds))
	if len(h.Bounds) != len(h.Counts) {
		return 0, 0, buckets
	}
	next := 0 // the first export bound not yet passed
	var cum uint64
	for i, c := range h.Counts {
		hi := h.Bounds[i]
		for next < len(exportBounds) && hi > exportBounds[next] {
			buckets[exportBounds[next].Seconds()] = cum
			next++
		}
		cum += c
		lo := time.Duration(0)
		if i > 0 {
			lo = h.Bounds[i-1]
		}
		mid := lo
		if hi != math.MaxInt64 {
			mid = lo + (hi-lo)/2
		}
		sum += float64(c) * mid.Seconds()
	}
	for ; next < len(exportBounds); next++ {
		buckets[exportBounds[next].Seconds()] = cum
	}
	return cum, sum, buckets
}

// exportBounds are the upper bounds of the exported latency buckets.
var exportBounds = func() []time.Duration {
	var b []time.Duration
	for k := 10; k <= 24; k++ {
		b = append(b, time.Microsecond<<k)
	}
	return b
}()
