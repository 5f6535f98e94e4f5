package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// phase names what the benchmark is doing, so that a failed request can be
// placed ("switch 17: promote"). Its zero value is ready to use.
type phase struct{ p atomic.Pointer[string] }

func (p *phase) set(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.p.Store(&s)
}

func (p *phase) String() string {
	if s := p.p.Load(); s != nil {
		return *s
	}
	return "start"
}

// failure is one failed request.
type failure struct {
	At    time.Duration // since the load started
	Phase string
	What  string // the error or the status line
}

// load offers an open-loop stream of GET / to one address: request i is due
// at start + i/rate and is sent then by whichever worker is free, however
// slow earlier answers are. Every worker keeps its own counts; stop merges
// them.
type load struct {
	rate  float64
	url   string
	hc    *http.Client
	phase *phase
	start time.Time
	// measureFrom ends the warm-up: requests due before it count as sent
	// and failed, but not in latency and lateness (every worker opens its
	// connection then).
	measureFrom time.Time
	next        atomic.Int64
	quit        chan struct{}
	wg          sync.WaitGroup
	workers     []*loadWorker
}

type loadWorker struct {
	byRev    map[int]int
	failures []failure
	latency  []time.Duration // from the moment each request was due, after the warm-up
	slow     []slow
	late     int // sent more than a millisecond after it was due
	maxLate  time.Duration
}

// loadResult is what the whole run of the load saw.
type loadResult struct {
	Rate     float64
	Sent     int
	Elapsed  time.Duration
	ByRev    map[int]int
	Failures []failure
	Latency  []time.Duration
	Slow     []slow
	Warmup   time.Duration
	Late     int
	MaxLate  time.Duration
}

// slowRequest is the latency beyond which a load request is listed by
// phase.
const slowRequest = 20 * time.Millisecond

// slow is a load request slower than slowRequest.
type slow struct {
	Phase   string
	Latency time.Duration
}

func startLoad(ctx context.Context, addr string, rate float64, workers int, warmup time.Duration, ph *phase) *load {
	l := &load{
		rate:  rate,
		url:   "http://" + addr + "/",
		phase: ph,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: workers, DisableCompression: true, IdleConnTimeout: time.Minute,
		}},
		start: time.Now().Add(10 * time.Millisecond),
		quit:  make(chan struct{}),
	}
	l.measureFrom = l.start.Add(warmup)
	for range workers {
		w := &loadWorker{byRev: map[int]int{}}
		l.workers = append(l.workers, w)
		l.wg.Go(func() { l.work(ctx, w) })
	}
	return l
}

func (l *load) due(i int64) time.Time {
	return l.start.Add(time.Duration(float64(i) * float64(time.Second) / l.rate))
}

func (l *load) work(ctx context.Context, w *loadWorker) {
	for {
		i := l.next.Add(1) - 1
		due := l.due(i)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-l.quit:
				return
			case <-ctx.Done():
				return
			}
		} else {
			select {
			case <-l.quit:
				return
			case <-ctx.Done():
				return
			default:
			}
		}
		if late := time.Since(due); late > time.Millisecond && !due.Before(l.measureFrom) {
			w.late++
			w.maxLate = max(w.maxLate, late)
		}
		l.send(ctx, w, due)
	}
}

// send makes one request. Requests already sent when the load stops still
// finish and count; only an interrupted run (ctx ended) drops them.
func (l *load) send(ctx context.Context, w *loadWorker, due time.Time) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	res, err := l.hc.Do(req)
	if ctx.Err() != nil {
		if err == nil {
			res.Body.Close()
		}
		return
	}
	if err != nil {
		w.failures = append(w.failures, failure{At: time.Since(l.start), Phase: l.phase.String(), What: err.Error()})
		return
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if lat := time.Since(due); !due.Before(l.measureFrom) {
		w.latency = append(w.latency, lat)
		if lat > slowRequest {
			w.slow = append(w.slow, slow{Phase: l.phase.String(), Latency: lat})
		}
	}
	switch {
	case err != nil:
		w.failures = append(w.failures, failure{At: time.Since(l.start), Phase: l.phase.String(), What: "body: " + err.Error()})
	case res.StatusCode != http.StatusOK:
		w.failures = append(w.failures, failure{At: time.Since(l.start), Phase: l.phase.String(), What: res.Status})
	default:
		rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
		w.byRev[rev]++
	}
}

// stop stops sending, waits for the requests in flight and returns the
// counts. Call it once.
func (l *load) stop() loadResult {
	close(l.quit)
	l.wg.Wait()
	elapsed := time.Since(l.start)
	l.hc.CloseIdleConnections()
	r := loadResult{Rate: l.rate, Elapsed: elapsed, ByRev: map[int]int{}, Warmup: l.measureFrom.Sub(l.start)}
	for _, w := range l.workers {
		for rev, n := range w.byRev {
			r.ByRev[rev] += n
			r.Sent += n
		}
		r.Sent += len(w.failures)
		r.Failures = append(r.Failures, w.failures...)
		r.Latency = append(r.Latency, w.latency...)
		r.Late += w.late
		r.Slow = append(r.Slow, w.slow...)
		r.MaxLate = max(r.MaxLate, w.maxLate)
	}
	return r
}
