package judge

import (
	"encoding/json"
	"math"
)

// Verdict is the outcome of one check at one look.
type Verdict string

// The three verdicts. Inconclusive is never a failure by itself.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Method names a statistical test and the work it comes from.
type Method struct {
	Name     string `json:"name"`
	Citation string `json:"citation"`
}

// Evidence is what a verdict rests on. Rates are fractions (0.01 is 1%),
// latencies seconds, request rates requests per second; Unit says which.
type Evidence struct {
	Method        Method `json:"method"`
	Metric        Metric `json:"metric"`
	Unit          string `json:"unit"`
	CanarySamples uint64 `json:"canarySamples"`
	StableSamples uint64 `json:"stableSamples,omitempty"`
	// HistorySamples is how many of the stable's requests from before the
	// first look weighed in the bets and cut-offs at this look (at most
	// 10,000, falling to none as the stable serves; history.go). They aim
	// the test and are never counted as evidence.
	HistorySamples uint64 `json:"historySamples,omitempty"`
	// Canary and Stable are point estimates of the metric.
	Canary float64 `json:"canary"`
	Stable float64 `json:"stable,omitempty"`
	// Effect is Canary − Stable for a comparison, Canary for a threshold.
	Effect float64 `json:"effect"`
	// Interval is an anytime-valid confidence interval for Effect at this
	// look, at level 1−Alpha. An end that the data cannot bound yet is
	// ±Inf in Go and null in JSON.
	Interval [2]float64 `json:"interval"`
	// LogEValue is the natural log of the e-value against "the canary is
	// within the tolerance"; PValue = min(1, 1/e-value), anytime-valid.
	// Both are zero-valued (0 and 1) where a method has none.
	LogEValue float64 `json:"logEValue"`
	PValue    float64 `json:"pValue"`
	// Threshold is the tolerance δ for a comparison, the bound for a
	// threshold check (Max, or Min when only Min is set).
	Threshold float64  `json:"threshold"`
	Alpha     float64  `json:"alpha"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Result is one check's verdict at one look.
type Result struct {
	Check    string   `json:"check"`
	Verdict  Verdict  `json:"verdict"`
	Evidence Evidence `json:"evidence"`
	// Reason says in a sentence why, for people.
	Reason string `json:"reason"`
}

// MarshalJSON writes unbounded interval ends (and any other non-finite
// number) as null, which encoding/json cannot do for float64.
func (e Evidence) MarshalJSON() ([]byte, error) {
	type plain Evidence
	return json.Marshal(struct {
		plain
		Interval  [2]*float64 `json:"interval"`
		Canary    *float64    `json:"canary"`
		Stable    *float64    `json:"stable,omitempty"`
		Effect    *float64    `json:"effect"`
		LogEValue *float64    `json:"logEValue"`
	}{
		plain:     plain(e),
		Interval:  [2]*float64{finite(e.Interval[0]), finite(e.Interval[1])},
		Canary:    finite(e.Canary),
		Stable:    finiteOmitZero(e.Stable),
		Effect:    finite(e.Effect),
		LogEValue: finite(e.LogEValue),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; a null interval end is the
// unbounded one.
func (e *Evidence) UnmarshalJSON(b []byte) error {
	type plain Evidence
	var in struct {
		plain
		Interval [2]*float64 `json:"interval"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*e = Evidence(in.plain)
	e.Interval = [2]float64{math.Inf(-1), math.Inf(1)}
	for i, v := range in.Interval {
		if v != nil {
			e.Interval[i] = *v
		}
	}
	return nil
}

func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func finiteOmitZero(v float64) *float64 {
	if v == 0 {
		return nil
	}
	return finite(v)
}
