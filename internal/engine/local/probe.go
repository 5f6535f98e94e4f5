package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// probeSettings is a probe with every default filled in.
type probeSettings struct {
	httpPath         string // empty: TCP connect
	initialDelay     time.Duration
	period           time.Duration
	timeout          time.Duration
	failureThreshold int
	successThreshold int
}

// settings fills in the defaults; a nil probe is a TCP connect probe.
func settings(p *manifest.Probe) probeSettings {
	s := probeSettings{period: time.Second, timeout: time.Second, failureThreshold: 3, successThreshold: 1}
	if p == nil {
		return s
	}
	s.httpPath = p.HTTP
	s.initialDelay = p.InitialDelay.D()
	if p.Period > 0 {
		s.period = p.Period.D()
	}
	if p.Timeout > 0 {
		s.timeout = p.Timeout.D()
	}
	if p.FailureThreshold > 0 {
		s.failureThreshold = p.FailureThreshold
	}
	if p.SuccessThreshold > 0 {
		s.successThreshold = p.SuccessThreshold
	}
	return s
}

// newProbeClient is the HTTP client for probes: no keep-alive (a probe is a
// fresh connection, and no idle connection outlives its replica) and
// redirects are answers, not something to follow.
func newProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// check runs the probe once against addr.
func (s probeSettings) check(ctx context.Context, client *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.httpPath == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp connect %s: %w", addr, err)
		}
		return conn.Close()
	}
	url := "http://" + addr + s.httpPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe request: %w", err)
	}
	req.Header.Set("User-Agent", "lastgood-probe")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// hysteresis turns probe results into a pass/fail verdict that changes only
// after successThreshold passes or failureThreshold failures in a row.
type hysteresis struct {
	passing          bool
	successes, fails int
	successThreshold int
	failureThreshold int
}

// observe records one result and reports whether the verdict changed.
func (h *hysteresis) observe(ok bool) (changed bool) {
	if ok {
		h.successes, h.fails = h.successes+1, 0
		if !h.passing && h.successes >= h.successThreshold {
			h.passing = true
			return true
		}
		return false
	}
	h.fails, h.successes = h.fails+1, 0
	if h.passing && h.fails >= h.failureThreshold {
		h.passing = false
		return true
	}
	return false
}

// runProbe probes addr after initialDelay and then every period until ctx
// ends, and calls onChange each time the verdict changes, with the last
// error when it turns to failing. initiallyPassing is the verdict before the
// first probe: false for readiness, true for liveness.
func runProbe(ctx context.Context, s probeSettings, client *http.Client, addr string, initiallyPassing bool, onChange func(passing bool, err error)) {
	h := hysteresis{passing: initiallyPassing, successThreshold: s.successThreshold, failureThreshold: s.failureThreshold}
	if !sleepCtx(ctx, s.initialDelay) {
		return
	}
	t := time.NewTicker(s.period)
	defer t.Stop()
	for {
		err := s.check(ctx, client, addr)
		if ctx.Err() != nil {
			return
		}
		if h.observe(err == nil) {
			onChange(h.passing, err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
