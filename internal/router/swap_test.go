package router

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSwapUnderLoadFailsNothing(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		one := []string{hostport(startBackend(t, "1")), hostport(startBackend(t, "1"))}
		two := []string{hostport(startBackend(t, "2"))}
		r := New("web")
		tables := []Table{
			{Routes: []Route{{Revision: 1, Weight: 1, Backends: one}}},
			{Routes: []Route{{Revision: 2, Weight: 1, Backends: two}}},
		}
		r.Set(tables[0])
		url, c := serve(t, r), newClient(t)

		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var ok, failed atomic.Int64
		var firstFailure atomic.Value
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					res, err := c.Get(url)
					if err != nil {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
						continue
					}
					body, err := io.ReadAll(res.Body)
					res.Body.Close()
					if err != nil || res.StatusCode != http.StatusOK || string(body) != res.Header.Get(RevisionHeader) {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, res.Status+" body "+string(body)+" header "+res.Header.Get(RevisionHeader))
						continue
					}
					ok.Add(1)
				}
			})
		}
		for i := range 200 {
			r.Set(tables[i%2])
			time.Sleep(time.Millisecond)
		}
		eventually(t, "some requests under load", func() bool { return ok.Load() >= 200 })
		stop()
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during 200 swaps; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
		}
		s1, s2 := statsOf(t, r, 1), statsOf(t, r, 2)
		if s1.Requests == 0 || s2.Requests == 0 || s1.Requests+s2.Requests != uint64(ok.Load()) {
			t.Errorf("stats %d + %d requests, want both revisions served and %d in total", s1.Requests, s2.Requests, ok.Load())
		}
		if s1.InFlight != 0 || s2.InFlight != 0 {
			t.Errorf("in flight after load: %d, %d", s1.InFlight, s2.InFlight)
		}
	})
}

func TestDrainWaitsForInFlightRequest(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		entered, release := make(chan struct{}), make(chan struct{})
		var finished atomic.Bool
		slow := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			close(entered)
			<-release
			finished.Store(true)
			io.WriteString(w, "slow")
		}))
		fast := startBackend(t, "fast")
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(slow)}}}})
		url, c := serve(t, r), newClient(t)

		slowDone := make(chan response, 1)
		go func() {
			res, err := c.Get(url)
			if err != nil {
				slowDone <- response{body: err.Error()}
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			slowDone <- response{status: res.StatusCode, body: string(body)}
		}()
		<-entered

		r.Set(Table{Routes: []Route{{Revision: 2, Weight: 1, Backends: []string{hostport(fast)}}}})
		if res := get(t, c, url); res.body != "fast" {
			t.Fatalf("after the swap a new request went to %q, want fast", res.body)
		}
		short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := r.WaitIdle(short, hostport(slow)); err == nil {
			t.Fatal("WaitIdle returned while a request was in flight")
		}

		idle := make(chan error, 1)
		go func() { idle <- r.WaitIdle(t.Context(), hostport(slow)) }()
		select {
		case err := <-idle:
			t.Fatalf("WaitIdle returned (%v) before the request finished", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if err := <-idle; err != nil {
			t.Fatalf("WaitIdle: %v", err)
		}
		if !finished.Load() {
			t.Fatal("WaitIdle returned before the backend finished the request")
		}
		if res := <-slowDone; res.status != http.StatusOK || res.body != "slow" {
			t.Errorf("drained request got %d %q, want 200 slow", res.status, res.body)
		}
		if err := r.WaitIdle(t.Context(), "127.0.0.1:1"); err != nil {
			t.Errorf("WaitIdle on an unknown address: %v", err)
		}
	})
}
