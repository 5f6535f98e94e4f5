package judge

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// testBounds is the router's bucket layout, rebuilt for tests: 8 buckets
// per power of two from 1µs, an overflow bucket from 2^27 µs.
func testBounds() []time.Duration {
	const unit = time.Microsecond / 8
	b := []time.Duration{time.Microsecond}
	for octave := range 27 {
		for sub := range 8 {
			b = append(b, unit*time.Duration((8+sub+1)<<octave))
		}
	}
	return append(b, math.MaxInt64)
}

// histogramOf puts latencies into a histogram with testBounds.
func histogramOf(bounds []time.Duration, latencies ...time.Duration) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
	for _, d := range latencies {
		h.Counts[bucketIndex(bounds, d)]++
	}
	return h
}

// bucketIndex returns the first bucket whose upper bound is above d.
func bucketIndex(bounds []time.Duration, d time.Duration) int {
	i, found := slices.BinarySearch(bounds, d)
	if found {
		i++
	}
	return min(i, len(bounds)-1)
}

// repeat returns n copies of d.
func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestParseMetricAndValue(t *testing.T) {
	if _, err := ParseMetric("latencyP95"); !errors.Is(err, ErrUnknownMetric) {
		t.Errorf("ParseMetric(latencyP95) error = %v, want ErrUnknownMetric", err)
	}
	if m, err := ParseMetric("latencyP99"); err != nil || m != LatencyP99 {
		t.Errorf("ParseMetric(latencyP99) = %q, %v", m, err)
	}
	for _, c := range []struct {
		m    Metric
		in   string
		want float64
	}{{ErrorRate, "0.01", 0.01}, {ErrorRate, "1%", 0.01}, {LatencyP99, "50ms", 0.05}, {RequestRate, "10", 10}} {
		got, err := ParseValue(c.m, c.in)
		if err != nil || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("ParseValue(%s, %q) = %v, %v; want %v", c.m, c.in, got, err, c.want)
		}
	}
	if _, err := ParseValue(LatencyP50, "0.05"); !errors.Is(err, ErrBadValue) {
		t.Errorf("ParseValue(latencyP50, 0.05) error = %v, want ErrBadValue (durations need a unit)", err)
	}
}

func TestBudget(t *testing.T) {
	if got := Budget(0.01, 4); got != 0.0025 {
		t.Errorf("Budget(0.01, 4) = %v, want 0.0025", got)
	}
	if got := Budget(0.01, 0); got != 0.01 {
		t.Errorf("Budget(0.01, 0) = %v, want 0.01", got)
	}
}

func TestEvidenceJSONWritesUnboundedEndsAsNull(t *testing.T) {
	ev := Evidence{Metric: LatencyP99, Interval: [2]float64{0.01, math.Inf(1)}, PValue: 1, Warnings: []string{"w"}}
	b, err := json.Marshal(Result{Check: "latency", Verdict: Inconclusive, Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"interval":[0.01,null]`) {
		t.Fatalf("JSON %s does not write the open end as null", b)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Evidence.Interval[0] != 0.01 || !math.IsInf(back.Evidence.Interval[1], 1) || back.Evidence.Metric != LatencyP99 {
		t.Fatalf("round trip gave %+v", back.Evidence)
	}
}

func TestCompareValidate(t *testing.T) {
	for _, c := range []Compare{
		{Check: "a", Metric: RequestRate},
		{Check: "b", Metric: ErrorRate, MaxIncrease: -0.01},
		{Check: "c", Metric: ErrorRate, MaxIncrease: 1},
		{Check: "d", Metric: "bogus"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: Validate() = nil, want an error", c)
		}
		_, res := c.Judge(RateState{}, Observation{}, 0.01)
		if res.Verdict != Inconclusive || len(res.Evidence.Warnings) == 0 {
			t.Errorf("%+v: Judge of an invalid check = %s with warnings %q, want inconclusive with a warning", c, res.Verdict, res.Evidence.Warnings)
		}
	}
}

// interval bisects the candidates; checking every candidate must give the
// same bounds, for small and large samples of several shapes.
func TestQuantileIntervalMatchesAFullScan(t *testing.T) {
	bounds := testBounds()
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		h := Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds))}
		median := time.Duration(1+rng.IntN(200)) * time.Millisecond
		sigma := 0.1 + rng.Float64()
		for range 1 + rng.IntN(5000) {
			d := time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
			h.Counts[bucketIndex(bounds, d)]++
		}
		for _, q := range []float64{0.5, 0.9, 0.99} {
			e := scanQuantile(h, q)
			for _, alpha := range []float64{0.1, 0.01, 0.001} {
				limit := math.Log(1 / alpha)
				wantLo, wantHi := 0.0, math.Inf(1)
				for _, b := range e.lower {
					if e.below.logM(b.count, e.n) >= limit {
						wantLo = max(wantLo, b.bound)
					}
				}
				for _, b := range e.upper {
					if e.above.logM(b.count, e.n) >= limit {
						wantHi = min(wantHi, b.bound)
					}
				}
				if lo, hi := e.interval(alpha); lo != wantLo || hi != wantHi {
					t.Fatalf("trial %d q %v α %v: interval [%v, %v], a full scan gives [%v, %v]", trial, q, alpha, lo, hi, wantLo, wantHi)
				}
			}
		}
	}
}
