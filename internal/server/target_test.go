package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// startPaced sends rate requests a second to addr, as steady clients
// would, until stopped; answers are counted as startClients counts them.
func startPaced(t *testing.T, addr string, rate int) *clients {
	t.Helper()
	c := &clients{byRev: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				switch {
				case err != nil:
					c.failed = append(c.failed, err.Error())
				case res.StatusCode != 200:
					c.failed = append(c.failed, res.Status)
				default:
					rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
					c.byRev[rev]++
				}
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			})
		}
	})
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait(); hc.CloseIdleConnections() }) }
	t.Cleanup(c.stop)
	return c
}

// waitEnd waits up to d for rollout id to end (or to pause, when paused
// is set) and returns the app's status.
func (in *instance) waitEnd(t *testing.T, app string, id int64, d time.Duration, paused bool) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, d, fmt.Sprintf("rollout #%d to end", id), func() bool {
		var err error
		if st, err = in.c.App(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		p := strategy.Phase(st.Rollout.Phase)
		return st.Rollout.ID == id && (p.Final() || paused && p == strategy.Paused)
	})
	return st
}

const canarySteps = "canary: {steps: [{setWeight: 10}, {analyze: {for: 20s}}, {setWeight: 50}, {analyze: {for: 20s}}]}"

// A canary 3% errors against a stable that crash-loops every 12 s during
// the rollout: the comparison is against a failing baseline, so it must
// not be promoted.
func TestCanaryIsNotPromotedAgainstACrashLoopingStable(t *testing.T) {
	in := start(t, t.TempDir())
	a := newApp(t, "crashy")
	c := startPaced(t, a.listen, 150)
	in.applyWait(t, a.manifest(t, 1, "blueGreen: {}", "FAULT_CRASH_AFTER: 12s"))
	res, err := in.c.ApplyFile(context.Background(), a.manifestWith(t, 1, canarySteps, "FAULT_ERROR_RATE: '0.03'", analysisOf(errorsCheck)))
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitEnd(t, a.name, res.Rollout, 2*time.Minute, true)
	c.stop()
	byRev, failed := c.snapshot()
	t.Logf("ended %s %s %s; answers %v, %d failed", st.Rollout.Detail.Phase, st.Rollout.Detail.Trigger, st.Rollout.Detail.Reason, byRev, len(failed))
	dumpEvents(t, in, a.name)
	if st.Rollout.Detail.Phase == strategy.Promoted {
		t.Fatalf("promoted a 3%%-error canary against a crash-looping stable")
	}
}

func dumpEvents(t *testing.T, in *instance, app string) {
	evs, _ := in.c.Events(context.Background(), app, 0)
	for _, e := range evs {
		t.Logf("%s %d %s %s", e.Time.Format("15:04:05.000"), e.Revision, e.Type, e.Message)
	}
}
