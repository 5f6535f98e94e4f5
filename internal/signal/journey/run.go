package journey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"
)

// maxBody is the most of an answer's body that is read and matched.
const maxBody = 1 << 20

// Run sends the steps, in order, to addr ("127.0.0.1:8123", or a base URL
// such as "http://127.0.0.1:8123") and stops at the first step that fails.
// timeout bounds the whole journey (DefaultTimeout when zero or less); ctx
// bounds it too. Each step is exactly one request: redirects are answers,
// not followed. Cookies carry from one step to the next within one run,
// never across runs. An invalid step fails when its turn comes.
func Run(ctx context.Context, addr string, steps []Step, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(steps) == 0 {
		return Result{FailedStep: 0, Steps: []StepResult{{Err: "the journey has no steps"}}}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	jar, _ := cookiejar.New(nil) // never fails without options
	client := &http.Client{
		Transport:     transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimSuffix(base, "/")

	res := Result{Passed: true, FailedStep: -1}
	for i, s := range steps {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("step %d", i+1)
		}
		start := time.Now()
		status, err := runStep(ctx, client, base, s, timeout)
		sr := StepResult{Name: name, Status: status, Duration: time.Since(start)}
		if err != nil {
			sr.Err = err.Error()
			res.Steps = append(res.Steps, sr)
			res.Passed, res.FailedStep = false, i
			return res
		}
		res.Steps = append(res.Steps, sr)
	}
	return res
}

// runStep sends one step and checks its answer; it returns the status
// received (0 when none) and why the step failed.
func runStep(ctx context.Context, client *http.Client, base string, s Step, timeout time.Duration) (int, error) {
	c, err := compile(s)
	if err != nil {
		return 0, err
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, base+c.Path, body)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "lastgood-journey")
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, requestError(ctx, c, timeout, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read the body of %s %s: %w", c.Method, c.Path, requestError(ctx, c, timeout, err))
	}
	if resp.StatusCode != c.ExpectStatus {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d, want %d%s", c.Method, c.Path, resp.StatusCode, c.ExpectStatus, excerpt(got))
	}
	if c.body != nil && !c.body.Match(got) {
		return resp.StatusCode, fmt.Errorf("%s %s: body does not match %q%s", c.Method, c.Path, c.ExpectBody, excerpt(got))
	}
	return resp.StatusCode, nil
}

func requestError(ctx context.Context, c compiled, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: no answer before the journey's timeout (%s)", c.Method, c.Path, timeout)
	}
	return fmt.Errorf("%s %s: %w", c.Method, c.Path, err)
}

// excerpt shows the start of a body in a message.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return " (empty body)"
	}
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("; body: %q", s)
}
