package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// prober sends requests back-to-back on its own keep-alive connection, apart
// from the load, to see when a switch becomes visible to a client.
type prober struct {
	url      string
	hc       *http.Client
	failures []failure // requests the prober saw fail, with the phase
}

func newProber(addr string) *prober {
	return &prober{
		url: "http://" + addr + "/",
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, DisableCompression: true,
		}},
	}
}

// get makes one request and returns the revision that answered.
func (p *prober) get(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	res, err := p.hc.Do(req)
	if err != nil {
		return 0, err
	}
	rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	switch {
	case err != nil:
		return 0, fmt.Errorf("body: %w", err)
	case res.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("%s", res.Status)
	}
	return rev, nil
}

// warm makes one request so that the next one finds an open connection; it
// returns the revision that answered.
func (p *prober) warm(ctx context.Context, ph *harness.Phase) (int, error) {
	rev, err := p.get(ctx)
	if err != nil {
		p.failures = append(p.failures, failure{Phase: ph.String(), What: err.Error()})
	}
	return rev, err
}

// probeResult is one switch as the prober saw it.
type probeResult struct {
	Visible time.Duration // from the API call returning to the first answer from the target
	Before  int           // answers from another revision first
	// Next are the round trips of the two requests after that answer:
	// the router alternates between the two new replicas, so the second
	// request is the other replica's first, and the third is warm.
	Next [2]time.Duration
}

// firstFrom sends requests back-to-back until revision want answers, and
// returns how long after since that answer arrived.
func (p *prober) firstFrom(ctx context.Context, want int, since time.Time, ph *harness.Phase) (probeResult, error) {
	var r probeResult
	deadline := since.Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
		res, err := p.hc.Do(req)
		at := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			p.failures = append(p.failures, failure{Phase: ph.String(), What: err.Error()})
		} else {
			rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode != http.StatusOK:
				p.failures = append(p.failures, failure{Phase: ph.String(), What: res.Status})
			case rev == want:
				r.Visible = at.Sub(since)
				for i := range r.Next {
					sent := time.Now()
					if _, err := p.get(ctx); err != nil {
						p.failures = append(p.failures, failure{Phase: ph.String(), What: err.Error()})
					}
					r.Next[i] = time.Since(sent)
				}
				return r, nil
			default:
				r.Before++
			}
		}
		if at.After(deadline) {
			return r, fmt.Errorf("revision %d did not answer within 10s of the switch (%d answers from others)", want, r.Before)
		}
	}
}
