package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// faults is the misbehaviour requested through FAULT_* variables.
type faults struct {
	errorRate  float64
	seed       uint64
	latency    time.Duration
	crashAfter time.Duration
	neverReady bool
	// unreadyFile makes /healthz fail while a file of this name exists.
	unreadyFile  string
	startDelay   time.Duration
	panicEvery   time.Duration
	memoryGrowth int64 // bytes per second
	// unhealthyAfter makes /livez fail once the process has run this long.
	unhealthyAfter time.Duration
	// dependency is a path: while a file is there, GET / fails.
	dependency string
}

// parseFaults reads every FAULT_* variable and reports each malformed one.
func parseFaults(getenv func(string) string) (faults, error) {
	var f faults
	var err error
	if v := getenv("FAULT_ERROR_RATE"); v != "" {
		f.errorRate, err = strconv.ParseFloat(v, 64)
		if err != nil || f.errorRate < 0 || f.errorRate > 1 {
			return f, fmt.Errorf("FAULT_ERROR_RATE=%q: want a number between 0 and 1", v)
		}
	}
	f.seed = 1
	if v := getenv("FAULT_SEED"); v != "" {
		if f.seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return f, fmt.Errorf("FAULT_SEED=%q: want a non-negative integer", v)
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"FAULT_LATENCY", &f.latency},
		{"FAULT_CRASH_AFTER", &f.crashAfter},
		{"FAULT_START_DELAY", &f.startDelay},
		{"FAULT_PANIC_EVERY", &f.panicEvery},
		{"FAULT_UNHEALTHY_AFTER", &f.unhealthyAfter},
	}
	for _, d := range durations {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < 0 {
			return f, fmt.Errorf("%s=%q: want a non-negative Go duration such as 250ms", d.name, v)
		}
	}
	f.neverReady = getenv("FAULT_NEVER_READY") == "1"
	f.unreadyFile = getenv("FAULT_UNREADY_FILE")
	f.dependency = getenv("FAULT_DEPENDENCY")
	if v := getenv("FAULT_MEMORY_GROWTH"); v != "" {
		if f.memoryGrowth, err = parseSize(v); err != nil {
			return f, fmt.Errorf("FAULT_MEMORY_GROWTH=%q: %w", v, err)
		}
	}
	return f, nil
}

// parseSize reads a byte count with an optional Ki, Mi or Gi suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative byte count such as 1048576 or 1Mi")
	}
	return n * mult, nil
}
