package judge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// feed looks at a rollout steps times, the counts growing evenly to the
// totals, and returns the last result.
func feed(c Compare, alpha float64, canary, stable Counts, steps int) (RateState, Result) {
	var st RateState
	var res Result
	for i := 1; i <= steps; i++ {
		frac := func(v uint64) uint64 { return v * uint64(i) / uint64(steps) }
		obs := Observation{
			Canary: Sample{Requests: frac(canary.Requests), Errors: frac(canary.Errors)},
			Stable: Sample{Requests: frac(stable.Requests), Errors: frac(stable.Errors)},
		}
		st, res = c.Judge(st, obs, alpha)
	}
	return st, res
}

func TestErrorRateVerdicts(t *testing.T) {
	for _, c := range []struct {
		name           string
		delta          float64
		canary, stable Counts
		steps          int
		want           Verdict
	}{
		{"5% against 1% fails", 0, Counts{1000, 50}, Counts{4000, 40}, 20, Fail},
		{"0.1% to 1% fails", 0, Counts{3000, 30}, Counts{12000, 12}, 30, Fail},
		{"equal rates within a 1% tolerance pass", 0.01, Counts{2000, 10}, Counts{8000, 40}, 20, Pass},
		{"a clean canary within 0.5% passes", 0.005, Counts{4000, 0}, Counts{16000, 16}, 40, Pass},
		{"a 3.5% increase within a 5% tolerance does not fail", 0.05, Counts{1000, 40}, Counts{4000, 20}, 20, Inconclusive},
		{"one error in ten requests is too little to fail", 0, Counts{10, 1}, Counts{40, 0}, 1, Inconclusive},
		{"equal rates with no tolerance never pass", 0, Counts{4000, 40}, Counts{16000, 160}, 40, Inconclusive},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := Compare{Check: "errors", Metric: ErrorRate, MaxIncrease: c.delta}
			_, res := feed(check, 0.01, c.canary, c.stable, c.steps)
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s", res.Verdict, c.want, res.Reason)
			}
			ev := res.Evidence
			if ev.CanarySamples != c.canary.Requests || ev.StableSamples != c.stable.Requests || ev.Alpha != 0.01 || ev.Threshold != c.delta {
				t.Errorf("evidence sizes/α/threshold = %d, %d, %v, %v", ev.CanarySamples, ev.StableSamples, ev.Alpha, ev.Threshold)
			}
			if ev.Interval[0] > ev.Effect || ev.Effect > ev.Interval[1] {
				t.Errorf("effect %v outside its interval %v", ev.Effect, ev.Interval)
			}
			if (res.Verdict == Fail) != (ev.PValue <= 0.01) {
				t.Errorf("verdict %s with p-value %v at α 0.01", res.Verdict, ev.PValue)
			}
			if res.Reason == "" || ev.Method.Citation == "" {
				t.Errorf("no reason or citation: %+v", res)
			}
		})
	}
}

func TestErrorRateWarnsOnLittleDataAndRestarts(t *testing.T) {
	check := Compare{Check: "errors", Metric: ErrorRate}
	st, res := check.Judge(RateState{}, Observation{Canary: Sample{Requests: 10}, Stable: Sample{Requests: 40}}, 0.01)
	if !hasWarning(res, "fewer than 100 requests on the canary") || !hasWarning(res, "no errors") {
		t.Errorf("warnings %q lack the small-sample ones", res.Evidence.Warnings)
	}
	st, res = check.Judge(st, Observation{Canary: Sample{Requests: 5}, Stable: Sample{Requests: 50}}, 0.01)
	if st.Restarts != 1 || !hasWarning(res, "went backwards") {
		t.Errorf("after counts went backwards: restarts %d, warnings %q", st.Restarts, res.Evidence.Warnings)
	}
	if res.Verdict != Inconclusive {
		t.Errorf("verdict %s after a restart with no data, want inconclusive", res.Verdict)
	}
}

func hasWarning(res Result, part string) bool {
	for _, w := range res.Evidence.Warnings {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// spread returns n latencies spread log-evenly over [lo, hi).
func spread(lo, hi time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(float64(lo) * math.Pow(float64(hi)/float64(lo), float64(i)/float64(n)))
	}
	return out
}

// lognormal returns n latencies at the quantiles (i+½)/n of a lognormal
// distribution with the given median and σ, shifted by shift: a sample
// without sampling noise.
func lognormal(median time.Duration, sigma float64, shift time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		z := math.Sqrt2 * math.Erfinv(2*(float64(i)+0.5)/float64(n)-1)
		out[i] = time.Duration(float64(median)*math.Exp(sigma*z)) + shift
	}
	return out
}

// feedLatency looks at a rollout steps times; look i adds every
// steps-th latency from i on, so each block is spread like the whole.
func feedLatency(c Compare, alpha float64, canary, stable []time.Duration, steps int) (RateState, Result) {
	bounds := testBounds()
	obs := Observation{
		Canary: Sample{Latency: histogramOf(bounds)},
		Stable: Sample{Latency: histogramOf(bounds)},
	}
	add := func(s *Sample, all []time.Duration, i int) {
		for j := i; j < len(all); j += steps {
			s.Requests++
			s.Latency.Counts[bucketIndex(bounds, all[j])]++
		}
	}
	var st RateState
	var res Result
	for i := range steps {
		add(&obs.Canary, canary, i)
		add(&obs.Stable, stable, i)
		st, res = c.Judge(st, obs, alpha)
	}
	return st, res
}

func TestLatencyVerdicts(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name           string
		metric         Metric
		delta          time.Duration
		canary, stable []time.Duration
		steps          int
		want           Verdict
	}{
		{"a doubled p99 fails", LatencyP99, 0, lognormal(100*ms, 0.5, 0, 2000), lognormal(50*ms, 0.5, 0, 8000), 20, Fail},
		{"a p99 50% slower fails", LatencyP99, 0, lognormal(75*ms, 0.5, 0, 2000), lognormal(50*ms, 0.5, 0, 8000), 20, Fail},
		{"a doubled p50 fails on little data", LatencyP50, 0, spread(100*ms, 200*ms, 100), spread(50*ms, 100*ms, 400), 5, Fail},
		{"the same p50 within 50ms passes", LatencyP50, 50 * ms, lognormal(50*ms, 0.5, 0, 1000), lognormal(50*ms, 0.5, 0, 4000), 10, Pass},
		{"a p99 20ms slower within 50ms passes", LatencyP99, 50 * ms, lognormal(50*ms, 0.5, 20*ms, 8000), lognormal(50*ms, 0.5, 0, 32000), 40, Pass},
		{"the same p99 with no tolerance neither fails nor passes", LatencyP99, 0, lognormal(50*ms, 0.5, 0, 4000), lognormal(50*ms, 0.5, 0, 16000), 40, Inconclusive},
		{"a p99 20ms slower within 50ms with little data", LatencyP99, 50 * ms, lognormal(50*ms, 0.5, 20*ms, 200), lognormal(50*ms, 0.5, 0, 800), 5, Inconclusive},
		{"ten requests say nothing", LatencyP99, 0, spread(100*ms, 200*ms, 10), spread(50*ms, 100*ms, 40), 2, Inconclusive},
		{"one look only fixes a cut-off", LatencyP99, 0, lognormal(200*ms, 0.5, 0, 2000), lognormal(50*ms, 0.5, 0, 8000), 1, Inconclusive},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := Compare{Check: "latency", Metric: c.metric, MaxIncrease: c.delta.Seconds()}
			st, res := feedLatency(check, 0.01, c.canary, c.stable, c.steps)
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s", res.Verdict, c.want, res.Reason)
			}
			ev := res.Evidence
			if !hasWarning(res, "bucket bounds") {
				t.Errorf("no bucket warning in %q", ev.Warnings)
			}
			if ev.CanarySamples != uint64(len(c.canary)) || ev.StableSamples != uint64(len(c.stable)) {
				t.Errorf("evidence sizes %d, %d, want %d, %d", ev.CanarySamples, ev.StableSamples, len(c.canary), len(c.stable))
			}
			if ev.Interval[0] > ev.Effect || ev.Effect > ev.Interval[1] {
				t.Errorf("effect %v outside its interval %v", ev.Effect, ev.Interval)
			}
			if (res.Verdict == Fail) != (ev.PValue <= 0.01) {
				t.Errorf("verdict %s with p-value %v at α 0.01", res.Verdict, ev.PValue)
			}
			if res.Verdict == Fail && !(ev.Effect > c.delta.Seconds()) {
				t.Errorf("failed with an estimated effect %v not above the tolerance", ev.Effect)
			}
			if q, _ := c.metric.Quantile(); (st.Latency.Cut != 0) != (float64(len(c.stable)) >= 1/(1-q)) {
				t.Errorf("cut-off %v after %d stable requests, want one from 1/(1−q) on", st.Latency.Cut, len(c.stable))
			}
		})
	}
}

func TestLatencyStateSurvivesJSONAndRestarts(t *testing.T) {
	ms := time.Millisecond
	bounds := testBounds()
	canary, stable := lognormal(100*ms, 0.5, 0, 2000), lognormal(50*ms, 0.5, 0, 8000)
	check := Compare{Check: "latency", Metric: LatencyP99}
	obs := Observation{Canary: Sample{Latency: histogramOf(bounds)}, Stable: Sample{Latency: histogramOf(bounds)}}
	var direct, viaJSON RateState
	var a, b Result
	for i := range 10 {
		for j := i; j < len(canary); j += 10 {
			obs.Canary.Latency.Counts[bucketIndex(bounds, canary[j])]++
		}
		for j := i; j < len(stable); j += 10 {
			obs.Stable.Latency.Counts[bucketIndex(bounds, stable[j])]++
		}
		direct, a = check.Judge(direct, obs, 0.01)
		raw, err := json.Marshal(viaJSON)
		if err != nil {
			t.Fatal(err)
		}
		var back RateState
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		viaJSON, b = check.Judge(back, obs, 0.01)
	}
	if a.Verdict != Fail || b.Verdict != Fail || a.Evidence.LogEValue != b.Evidence.LogEValue {
		t.Fatalf("direct %s (log e %v), through JSON %s (log e %v): want the same failure", a.Verdict, a.Evidence.LogEValue, b.Verdict, b.Evidence.LogEValue)
	}
	// A new stable replica set starts its histogram from zero: the
	// evidence so far stands, and the test goes on from the new counts.
	before := direct.MaxLogEFail
	obs.Stable.Latency = histogramOf(bounds, stable[:100]...)
	st, res := check.Judge(direct, obs, 0.01)
	if st.Restarts != 1 || !hasWarning(res, "went backwards") || st.MaxLogEFail != before || res.Verdict != Fail {
		t.Errorf("after the stable's histogram went backwards: restarts %d, max log e %v (was %v), verdict %s, warnings %q",
			st.Restarts, st.MaxLogEFail, before, res.Verdict, res.Evidence.Warnings)
	}
	if st.Latency.Cut == 0 || st.Latency.Stable.Requests != 100 {
		t.Errorf("after the reset the cut-offs were not fixed again from the new counts: %+v", st.Latency)
	}
}

func TestThresholdVerdicts(t *testing.T) {
	bounds := testBounds()
	ms := time.Millisecond
	v := func(f float64) *float64 { return &f }
	for _, c := range []struct {
		name  string
		check Threshold
		obs   Observation
		want  Verdict
	}{
		{"no errors in 2000 is under 5%", Threshold{Metric: ErrorRate, Max: v(0.05)}, Observation{Canary: Sample{Requests: 2000}}, Pass},
		{"30% errors is over 5%", Threshold{Metric: ErrorRate, Max: v(0.05)}, Observation{Canary: Sample{Requests: 1000, Errors: 300}}, Fail},
		{"one error in three is too little to say", Threshold{Metric: ErrorRate, Max: v(0.05)}, Observation{Canary: Sample{Requests: 3, Errors: 1}}, Inconclusive},
		{"a 40ms p99 is under 100ms", Threshold{Metric: LatencyP99, Max: v(0.1)},
			Observation{Canary: Sample{Requests: 2000, Latency: histogramOf(bounds, spread(20*ms, 40*ms, 2000)...)}}, Pass},
		{"a 400ms p99 is over 100ms", Threshold{Metric: LatencyP99, Max: v(0.1)},
			Observation{Canary: Sample{Requests: 2000, Latency: histogramOf(bounds, spread(200*ms, 400*ms, 2000)...)}}, Fail},
		{"a p50 under a min of 10ms fails", Threshold{Metric: LatencyP50, Min: v(0.01)},
			Observation{Canary: Sample{Requests: 500, Latency: histogramOf(bounds, repeat(2*ms, 500)...)}}, Fail},
		{"20 req/s is over a min of 10", Threshold{Metric: RequestRate, Min: v(10)}, Observation{Canary: Sample{Requests: 2000}, Elapsed: 100 * time.Second}, Pass},
		{"1 req/s is under a min of 10", Threshold{Metric: RequestRate, Min: v(10)}, Observation{Canary: Sample{Requests: 100}, Elapsed: 100 * time.Second}, Fail},
		{"no elapsed time says nothing", Threshold{Metric: RequestRate, Min: v(10)}, Observation{Canary: Sample{Requests: 100}}, Inconclusive},
		{"no bounds is invalid", Threshold{Metric: ErrorRate}, Observation{Canary: Sample{Requests: 100}}, Inconclusive},
		{"min above max is invalid", Threshold{Metric: ErrorRate, Min: v(0.5), Max: v(0.1)}, Observation{Canary: Sample{Requests: 100}}, Inconclusive},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := c.check.Judge(c.obs, 0.01)
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s (interval %v)", res.Verdict, c.want, res.Reason, res.Evidence.Interval)
			}
			if res.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}
