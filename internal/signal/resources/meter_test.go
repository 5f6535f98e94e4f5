package resources

import (
	"math"
	"testing"
	"time"
)

func TestMeterObserve(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type obs struct {
		at   time.Time
		u    Usage
		want Rates
	}
	tests := []struct {
		name string
		seq  []obs
	}{
		{"first observation has no rate", []obs{
			{t0, Usage{RSS: 10, CPU: time.Hour, FDs: 3}, Rates{RSS: 10, FDs: 3}},
		}},
		{"one core over a second", []obs{
			{t0, Usage{CPU: time.Second}, Rates{}},
			{at(time.Second), Usage{CPU: 2 * time.Second, RSS: 7, FDs: 9}, Rates{CPU: 1, RSS: 7, FDs: 9, Interval: time.Second}},
		}},
		{"half a core over two seconds, then idle", []obs{
			{t0, Usage{}, Rates{}},
			{at(2 * time.Second), Usage{CPU: time.Second}, Rates{CPU: 0.5, Interval: 2 * time.Second}},
			{at(3 * time.Second), Usage{CPU: time.Second}, Rates{CPU: 0, Interval: time.Second}},
		}},
		{"two cores", []obs{
			{t0, Usage{}, Rates{}},
			{at(500 * time.Millisecond), Usage{CPU: time.Second}, Rates{CPU: 2, Interval: 500 * time.Millisecond}},
		}},
		{"a process left the group: clamped at 0", []obs{
			{t0, Usage{CPU: 5 * time.Second}, Rates{}},
			{at(time.Second), Usage{CPU: 2 * time.Second}, Rates{CPU: 0, Interval: time.Second}},
			{at(2 * time.Second), Usage{CPU: 2500 * time.Millisecond}, Rates{CPU: 0.5, Interval: time.Second}},
		}},
		{"same or earlier time yields no rate and keeps the baseline", []obs{
			{t0, Usage{}, Rates{}},
			{t0, Usage{CPU: time.Second, RSS: 1}, Rates{RSS: 1}},
			{at(-time.Second), Usage{CPU: time.Second}, Rates{}},
			{at(4 * time.Second), Usage{CPU: time.Second}, Rates{CPU: 0.25, Interval: 4 * time.Second}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meter
			for i, o := range tt.seq {
				got := m.Observe(o.at, o.u)
				if math.Abs(got.CPU-o.want.CPU) > 1e-9 || got.RSS != o.want.RSS || got.FDs != o.want.FDs || got.Interval != o.want.Interval {
					t.Errorf("observation %d: got %+v, want %+v", i, got, o.want)
				}
			}
		})
	}
}
