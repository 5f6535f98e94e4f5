package harness

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The load keeps every response, or with a sink hands each over and
// keeps none.
func TestLoadKeepsOrStreams(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Lastgood-Revision", "7")
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	var ph Phase

	// A request the server has begun is recorded by Stop, which waits for
	// the workers: wait for one instead of sleeping.
	waitServed := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); served.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the server saw %d requests in 30s, want %d", served.Load(), n)
			}
		}
	}
	kept := StartLoad(ctx, addr, 200, 4, &ph)
	waitServed(1)
	run := kept.Stop()
	if len(run.Responses) == 0 {
		t.Fatal("StartLoad kept no response")
	}
	for _, r := range run.Responses {
		if r.Failed() || r.Revision != 7 {
			t.Fatalf("kept response %+v, want 200 from revision 7", r)
		}
	}

	var got, bad atomic.Int64
	streamed := StartLoadTo(ctx, addr, 200, 4, &ph, func(r Response) {
		got.Add(1)
		if r.Failed() || r.Revision != 7 {
			bad.Add(1)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); got.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	run = streamed.Stop()
	if got.Load() == 0 || bad.Load() != 0 {
		t.Errorf("sink saw %d responses, %d of them not a 200 from revision 7; want some, none", got.Load(), bad.Load())
	}
	if len(run.Responses) != 0 {
		t.Errorf("a load with a sink kept %d responses, want none", len(run.Responses))
	}
	n := got.Load()
	time.Sleep(50 * time.Millisecond)
	if got.Load() != n {
		t.Errorf("the sink was called after Stop returned (%d, then %d)", n, got.Load())
	}
}
