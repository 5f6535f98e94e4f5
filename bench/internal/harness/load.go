package harness

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Phase names what a benchmark is doing, so that a response can be placed
// ("switch 17: promote"). Its zero value is ready to use.
type Phase struct{ p atomic.Pointer[string] }

// Set names the phase from now on.
func (p *Phase) Set(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.p.Store(&s)
}

func (p *Phase) String() string {
	if s := p.p.Load(); s != nil {
		return *s
	}
	return "start"
}

// Response is one request of the load as the client saw it. Its times are
// offsets from the load's start.
type Response struct {
	Due  time.Duration // when the schedule wanted it sent
	Sent time.Duration // when a worker sent it
	Done time.Duration // when the answer (or the error) arrived
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Revision is the Lastgood-Revision header, 0 when absent.
	Revision int
	// Err is the transport error, or "body: …" when the body could not be
	// read; "" otherwise.
	Err string
	// Phase is what the benchmark was doing when the answer arrived.
	Phase string
}

// Failed reports whether the request failed: no answer, a broken body, or
// a status other than 200.
func (r Response) Failed() bool { return r.Err != "" || r.Status != http.StatusOK }

// Latency is the time from when the request was due to its answer, so
// that a late send counts against the server (no coordinated omission).
func (r Response) Latency() time.Duration { return r.Done - r.Due }

// Load offers an open-loop stream of GET / to one address: request i is
// due at start + i/rate and is sent then by whichever worker is free,
// however slow earlier answers are. Every worker keeps its own records;
// Stop merges them. A load started with StartLoadTo keeps nothing and hands
// every response to its sink instead.
type Load struct {
	rate    float64
	url     string
	hc      *http.Client
	phase   *Phase
	sink    func(Response)
	start   time.Time
	next    atomic.Int64
	quit    chan struct{}
	wg      sync.WaitGroup
	workers []*loadWorker
}

type loadWorker struct {
	responses []Response
}

// LoadRun is what the whole run of the load saw.
type LoadRun struct {
	Rate    float64
	Start   time.Time
	Elapsed time.Duration
	// Responses are every request sent, in the order they were due.
	// Requests cut off by the end of the benchmark's context are left out.
	// Empty for a load started with StartLoadTo.
	Responses []Response
}

// Time returns the wall-clock time of an offset from the load's start.
func (r LoadRun) Time(d time.Duration) time.Time { return r.Start.Add(d) }

// StartLoad starts offering rate requests per second to addr from workers
// concurrent senders (and at most as many keep-alive connections).
func StartLoad(ctx context.Context, addr string, rate float64, workers int, ph *Phase) *Load {
	return StartLoadTo(ctx, addr, rate, workers, ph, nil)
}

// StartLoadTo is StartLoad for long runs: every response goes to sink, as
// it arrives and from several workers at once (sink must be safe for
// concurrent use and quick), and none is kept. A nil sink keeps them, as
// StartLoad does.
func StartLoadTo(ctx context.Context, addr string, rate float64, workers int, ph *Phase, sink func(Response)) *Load {
	l := &Load{
		sink:  sink,
		rate:  rate,
		url:   "http://" + addr + "/",
		phase: ph,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: workers, DisableCompression: true, IdleConnTimeout: time.Minute,
		}},
		start: time.Now().Add(10 * time.Millisecond),
		quit:  make(chan struct{}),
	}
	for range workers {
		w := &loadWorker{}
		l.workers = append(l.workers, w)
		l.wg.Go(func() { l.work(ctx, w) })
	}
	return l
}

func (l *Load) due(i int64) time.Time {
	return l.start.Add(time.Duration(float64(i) * float64(time.Second) / l.rate))
}

func (l *Load) work(ctx context.Context, w *loadWorker) {
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
		l.send(ctx, w, due)
	}
}

// send makes one request. Requests already sent when the load stops still
// finish and count; only an interrupted run (ctx ended) drops them.
func (l *Load) send(ctx context.Context, w *loadWorker, due time.Time) {
	r := Response{Due: due.Sub(l.start), Sent: time.Since(l.start)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	res, err := l.hc.Do(req)
	if ctx.Err() != nil {
		if err == nil {
			res.Body.Close()
		}
		return
	}
	if err != nil {
		r.Done, r.Err, r.Phase = time.Since(l.start), err.Error(), l.phase.String()
		l.record(w, r)
		return
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	r.Done, r.Status, r.Phase = time.Since(l.start), res.StatusCode, l.phase.String()
	r.Revision, _ = strconv.Atoi(res.Header.Get("Lastgood-Revision"))
	if err != nil {
		r.Err = "body: " + err.Error()
	}
	l.record(w, r)
}

// record hands r to the sink, or keeps it with the worker's others.
func (l *Load) record(w *loadWorker, r Response) {
	if l.sink != nil {
		l.sink(r)
		return
	}
	w.responses = append(w.responses, r)
}

// Stop stops sending, waits for the requests in flight and returns every
// response. Call it once.
func (l *Load) Stop() LoadRun {
	close(l.quit)
	l.wg.Wait()
	elapsed := time.Since(l.start)
	l.hc.CloseIdleConnections()
	r := LoadRun{Rate: l.rate, Start: l.start, Elapsed: elapsed}
	for _, w := range l.workers {
		r.Responses = append(r.Responses, w.responses...)
	}
	slices.SortFunc(r.Responses, func(a, b Response) int { return cmp.Compare(a.Due, b.Due) })
	return r
}
