package demo

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// load sends a steady stream of requests to the app, as its clients would,
// and counts what each revision answered and how many requests failed.
type load struct {
	url  string
	rate int // requests per second

	mu       sync.Mutex
	served   map[int]int // by Lastgood-Revision
	failed   int
	failedBy map[int]int // by Lastgood-Revision; 0 when no revision answered
	lastFail string
}

func newLoad(url string, rate int) *load {
	return &load{url: url, rate: rate, served: map[int]int{}, failedBy: map[int]int{}}
}

// run sends requests until ctx ends.
func (l *load) run(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.one(ctx, client)
		}()
	}
}

func (l *load) one(ctx context.Context, client *http.Client) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	res, err := client.Do(req)
	if ctx.Err() != nil {
		return // the demo is ending; not the app's failure
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		l.failedBy[0]++
		l.lastFail = err.Error()
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
	if res.StatusCode != http.StatusOK {
		l.failed++
		l.failedBy[rev]++
		l.lastFail = res.Status
		return
	}
	l.served[rev]++
}

// counts returns a copy of the tallies.
func (l *load) counts() (map[int]int, int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	served := make(map[int]int, len(l.served))
	for k, v := range l.served {
		served[k] = v
	}
	return served, l.failed, l.lastFail
}

// failures returns how many requests failed, by the revision that answered.
func (l *load) failures() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.failedBy)
}
