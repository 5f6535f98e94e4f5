package main

import (
	"testing"
	"time"
)

func TestBucketOfMatchesBounds(t *testing.T) {
	bounds := bucketBounds()
	for i := 0; i < numBuckets-1; i++ {
		if got := bucketOf(bounds[i] - 1); got != i {
			t.Fatalf("bucketOf(%v - 1ns) = %d, want %d", bounds[i], got, i)
		}
		if got := bucketOf(bounds[i]); got != i+1 {
			t.Fatalf("bucketOf(%v) = %d, want %d", bounds[i], got, i+1)
		}
	}
	if bounds[1] != 1125*time.Nanosecond || bounds[8] != 2*time.Microsecond {
		t.Fatalf("first octave bounds %v…%v, want 1.125µs…2µs", bounds[1], bounds[8])
	}
}
