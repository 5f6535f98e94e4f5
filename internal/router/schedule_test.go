package router

import (
	"slices"
	"strings"
	"testing"
)

func scheduleString(order []uint16) string {
	var b strings.Builder
	for _, i := range order {
		b.WriteByte(byte('A' + i))
	}
	return b.String()
}

func TestScheduleInterleaves(t *testing.T) {
	got := scheduleString(schedule([]int{11, 3}))
	if len(got) != 14 || strings.Count(got, "A") != 11 || strings.Count(got, "B") != 3 {
		t.Fatalf("schedule(11, 3) = %s, want 11 A and 3 B", got)
	}
	if strings.Contains(got, "AAAAA") || strings.Contains(got, "BB") {
		t.Errorf("schedule(11, 3) = %s bunches; want B spread between runs of at most 4 A", got)
	}
	t.Logf("schedule(11, 3) = %s", got)
}

func TestScheduleReducesByGCD(t *testing.T) {
	tests := []struct {
		weights []int
		want    string
	}{
		{[]int{50, 50}, "AB"},
		{[]int{90, 10}, "AAAAABAAAA"},
		{[]int{7}, "A"},
		{[]int{20, 40, 20}, "BACB"},
		{[]int{1, 1, 1}, "ABC"},
	}
	for _, tt := range tests {
		if got := scheduleString(schedule(tt.weights)); got != tt.want {
			t.Errorf("schedule(%v) = %s, want %s", tt.weights, got, tt.want)
		}
	}
}

func TestScheduleBoundsHugeWeights(t *testing.T) {
	order := schedule([]int{1 << 40, 999_999_937, 1})
	if len(order) > maxSchedule+3 {
		t.Fatalf("schedule length %d, want at most %d", len(order), maxSchedule+3)
	}
	counts := make([]int, 3)
	for _, i := range order {
		counts[i]++
	}
	if counts[2] < 1 || counts[1] < 1 || counts[0] <= counts[1] {
		t.Errorf("counts %v: every positive weight must appear, in order of weight", counts)
	}
	if !slices.Contains(order, 2) {
		t.Errorf("weight 1 vanished from the schedule")
	}
}
