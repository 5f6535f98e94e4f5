package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// startBackground starts the time-driven faults: crash, panic lines and
// memory growth. Each goroutine ends with ctx; a crash cancels ctx with
// errCrash as the cause.
func startBackground(ctx context.Context, f faults, stderr io.Writer, cancel context.CancelCauseFunc) {
	if f.crashAfter > 0 {
		go func() {
			select {
			case <-time.After(f.crashAfter):
				fmt.Fprintln(stderr, "sampleapp: simulated crash after", f.crashAfter)
				cancel(errCrash)
			case <-ctx.Done():
			}
		}()
	}
	if f.panicEvery > 0 {
		go every(ctx, f.panicEvery, func() { fmt.Fprintln(stderr, "panic: simulated failure") })
	}
	if f.memoryGrowth > 0 {
		go growMemory(ctx, f.memoryGrowth)
	}
}

// every calls fn at each tick of period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			fn()
		case <-ctx.Done():
			return
		}
	}
}

// growMemory allocates perSecond bytes each second, in ten slices, and keeps
// them. Every page is written so that the growth shows in the RSS.
func growMemory(ctx context.Context, perSecond int64) {
	const ticks = 10
	var kept [][]byte
	every(ctx, time.Second/ticks, func() {
		b := make([]byte, perSecond/ticks)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
	})
	_ = kept
}
