package telemetry

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// scrape fetches url and parses the text format.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %s %s\n%s", url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, body)
	}
	return fams, string(body)
}

// find returns the metric of family name whose labels include labels.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no %s%v in the scrape", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s%v in the scrape", name, labels)
	}
	return m.Histogram
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// checkScenario asserts the event-log metrics of scenario.
func checkScenario(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lastgood_rollouts_total", []string{"app", "web", "strategy", "canary"}, 2},
		{"lastgood_rollouts_total", []string{"app", "api", "strategy", "blueGreen"}, 1},
		{"lastgood_rollouts_total", []string{"app", "jobs", "strategy", "canary"}, 2},
		{"lastgood_rollouts_ended_total", []string{"app", "web", "phase", "promoted"}, 1},
		{"lastgood_rollouts_ended_total", []string{"app", "web", "phase", "rolled-back"}, 1},
		{"lastgood_rollouts_ended_total", []string{"app", "api", "phase", "aborted"}, 1},
		{"lastgood_rollouts_ended_total", []string{"app", "jobs", "phase", "rolled-back"}, 1},
		{"lastgood_rollbacks_total", []string{"app", "web", "trigger", "analysis"}, 1},
		{"lastgood_rollbacks_total", []string{"app", "api", "trigger", "abort"}, 1},
		{"lastgood_rollbacks_total", []string{"app", "jobs", "trigger", "analysis"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, c := range []struct {
		name, app string
		sum       float64
	}{
		{"lastgood_time_to_detect_seconds", "web", 4},
		{"lastgood_time_to_rollback_seconds", "web", 1},
		{"lastgood_time_to_detect_seconds", "jobs", 2}, // from the verdict event's "at"
		{"lastgood_time_to_rollback_seconds", "jobs", 3},
	} {
		h := histogram(t, fams, c.name, "app", c.app)
		if h.GetSampleCount() != 1 || !near(h.GetSampleSum(), c.sum) {
			t.Errorf("%s{app=%q}: count %d sum %v, want 1 and %v", c.name, c.app, h.GetSampleCount(), h.GetSampleSum(), c.sum)
		}
	}
	if m := find(fams, "lastgood_time_to_detect_seconds", "app", "api"); m != nil {
		t.Errorf("an abort observed a time to detect: %v", m)
	}
}

func TestScrapeTextFormat(t *testing.T) {
	s := openStore(t)
	w := &writer{t: t, s: s, t0: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tel := New(testConfig(s))
	srv := serve(t, tel)
	// web's first rollout is in the log before Run starts (read at
	// start); the rest arrives while it follows.
	last := scenario(w, func() { follow(t, tel) })
	waitSeq(t, tel, last)
	fams, body := scrape(t, srv.URL+"/metrics")
	checkScenario(t, fams)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lastgood_traffic_weight", []string{"app", "web", "revision", "2"}, 80},
		{"lastgood_traffic_weight", []string{"app", "web", "revision", "3"}, 20},
		{"lastgood_rollout_phase", []string{"app", "web", "phase", "rolled-back"}, 1},
		{"lastgood_rollout_phase", []string{"app", "web", "phase", "promoted"}, 0},
		{"lastgood_rollout_phase", []string{"app", "api", "phase", "aborted"}, 1},
		{"lastgood_rollout_phase", []string{"app", "jobs", "phase", "progressing"}, 1},
		{"lastgood_requests_total", []string{"app", "web", "revision", "2", "code", "3xx"}, 1},
		{"lastgood_requests_total", []string{"app", "web", "revision", "3", "code", "2xx"}, 3},
		{"lastgood_requests_total", []string{"app", "web", "revision", "3", "code", "5xx"}, 1},
		{"lastgood_requests_total", []string{"app", "web", "revision", "3", "code", "4xx"}, 0},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if m := find(fams, "lastgood_requests_total", "code", "1xx"); m != nil {
		t.Errorf("1xx exported without any 1xx response: %v", m)
	}
	if m := find(fams, "lastgood_traffic_weight", "app", "api"); m != nil {
		t.Errorf("weights of an app the Weights func does not report: %v", m)
	}

	// The latency histogram, in the text format as an ingress exposes it.
	for _, line := range []string{
		`lastgood_request_duration_seconds_bucket{app="web",revision="3",le="0.001024"} 1`,
		`lastgood_request_duration_seconds_bucket{app="web",revision="3",le="0.002048"} 1`,
		`lastgood_request_duration_seconds_bucket{app="web",revision="3",le="0.004096"} 3`,
		`lastgood_request_duration_seconds_bucket{app="web",revision="3",le="16.777216"} 3`,
		`lastgood_request_duration_seconds_bucket{app="web",revision="3",le="+Inf"} 4`,
		`lastgood_request_duration_seconds_count{app="web",revision="3"} 4`,
		`# TYPE lastgood_request_duration_seconds histogram`,
		`# TYPE lastgood_rollbacks_total counter`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("the scrape lacks the line\n\t%s\nscrape:\n%s", line, body)
		}
	}
	h := histogram(t, fams, "lastgood_request_duration_seconds", "app", "web", "revision", "3")
	// Midpoints are off by at most half a router bucket, 6.25%.
	if sum := h.GetSampleSum(); math.Abs(sum-20.0065) > 0.0625*20.0065 {
		t.Errorf("latency sum %v, want about 20.0065s (bucket midpoints)", sum)
	}
	if n := len(h.Bucket); n != 16 {
		t.Errorf("%d latency buckets, want 16 (2^10..2^24 µs and +Inf)", n)
	}
}

// Counters survive a restart: a new Telemetry over the same store reads
// the whole log again.
func TestRestartRebuildsFromLog(t *testing.T) {
	s := openStore(t)
	w := &writer{t: t, s: s, t0: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	last := scenario(w, nil)
	tel := New(Config{Store: s})
	follow(t, tel)
	waitSeq(t, tel, last)
	srv := serve(t, tel)
	fams, _ := scrape(t, srv.URL+"/metrics")
	checkScenario(t, fams)
	if m := find(fams, "lastgood_requests_total"); m != nil {
		t.Errorf("router metrics without a Stats func: %v", m)
	}
	// Events after the restart are counted once more, and only once.
	r := w.start("api", 5, 6, "canary", 100)
	seq := w.end(r, 110, "rolled-back", "progressDeadline", "rollout.rolled-back", nil).Seq
	waitSeq(t, tel, seq)
	fams, _ = scrape(t, srv.URL+"/metrics")
	if got := value(t, fams, "lastgood_rollbacks_total", "app", "api", "trigger", "progressDeadline"); got != 1 {
		t.Errorf("progressDeadline rollbacks = %v, want 1", got)
	}
	h := histogram(t, fams, "lastgood_time_to_rollback_seconds", "app", "api")
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0 {
		t.Errorf("a rollback no check decided: time to roll back count %d sum %v, want 1 and 0", h.GetSampleCount(), h.GetSampleSum())
	}
	if m := find(fams, "lastgood_time_to_detect_seconds", "app", "api"); m != nil {
		t.Errorf("a progress-deadline rollback observed a time to detect: %v", m)
	}
}

// Run returns an error, not a busy loop, when the store goes away, and
// nil when its context ends.
func TestRunEnds(t *testing.T) {
	s := openStore(t)
	tel := New(Config{Store: s})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tel.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}

	go func() { done <- New(Config{Store: s}).Run(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after the store closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the store closed")
	}
}

func TestPromBuckets(t *testing.T) {
	var ds []time.Duration
	for d := 100 * time.Nanosecond; d < 200*time.Second; d = d * 13 / 10 {
		ds = append(ds, d)
	}
	count, _, buckets := promBuckets(latency(ds...))
	if count != uint64(len(ds)) {
		t.Fatalf("count %d, want %d", count, len(ds))
	}
	for _, b := range exportBounds {
		var want uint64
		for _, d := range ds {
			if d < b {
				want++
			}
		}
		if got := buckets[b.Seconds()]; got != want {
			t.Errorf("le=%v: %d, want %d (exact: the bound is a router bucket edge)", b, got, want)
		}
	}
	if c, s, b := promBuckets(router.Histogram{}); c != 0 || s != 0 || len(b) != len(exportBounds) {
		t.Errorf("empty histogram: %d %v %v", c, s, b)
	}
}

// A follower that falls more than the store's subscription buffer behind
// is cut off; Run reads what it missed and subscribes again, counting
// every event exactly once.
func TestRunCatchesUpAfterFallingBehind(t *testing.T) {
	s := openStore(t)
	w := &writer{t: t, s: s, t0: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	w.app("web")
	tel := New(Config{Store: s})
	follow(t, tel)
	const n = 3000 // one commit, three times the subscription buffer
	var last store.Event
	w.update(func(tx *store.Tx) error {
		for i := range n {
			var err error
			last, err = tx.AppendEvent(store.Event{Time: w.at(float64(i)), App: "web", Rollout: int64(i + 1),
				Revision: 2, Type: "rollout.promoted", Message: "promoted"})
			if err != nil {
				return err
			}
		}
		return nil
	})
	waitSeq(t, tel, last.Seq)
	srv := serve(t, tel)
	fams, _ := scrape(t, srv.URL+"/metrics")
	if got := value(t, fams, "lastgood_rollouts_ended_total", "app", "web", "phase", "promoted"); got != n {
		t.Errorf("promoted rollouts = %v, want %d", got, n)
	}
}
