package harness

import (
	"fmt"
	"slices"
	"time"
)

// Sorted is a sorted sample of durations.
type Sorted []time.Duration

// Percentiles returns a sorted copy of ds.
func Percentiles(ds []time.Duration) Sorted {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

// At returns the nearest-rank q-quantile, 0 for an empty sample.
func (s Sorted) At(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s)) + 0.999999)
	return s[min(max(i, 1), len(s))-1]
}

// Max returns the largest duration, 0 for an empty sample.
func (s Sorted) Max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// FormatDuration writes d with a unit that suits its size: 1.23s, 4.56ms,
// 789µs, -12.00ms.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatDuration(-d)
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
