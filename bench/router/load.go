package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec is one open-loop run.
type loadSpec struct {
	URL      string
	Rate     float64       // requests per second offered
	Conns    int           // keep-alive connections
	Duration time.Duration // measured part
	Warmup   time.Duration // sent but not measured
}

// loadResult is what a run measured. Latencies are corrected for
// coordinated omission: each is measured from the moment the request was
// due, not from when a free connection sent it.
type loadResult struct {
	URL      string
	Offered  float64
	Achieved float64
	Requests int
	Errors   int
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
}

func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var spec loadSpec
	fs.StringVar(&spec.URL, "url", "http://127.0.0.1:18082/", "target")
	fs.Float64Var(&spec.Rate, "rate", 1000, "requests per second")
	fs.IntVar(&spec.Conns, "c", 32, "keep-alive connections")
	fs.DurationVar(&spec.Duration, "d", 10*time.Second, "measured duration")
	fs.DurationVar(&spec.Warmup, "warmup", time.Second, "unmeasured warm-up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := openLoop(ctx, spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// openLoop offers spec.Rate requests per second on a fixed schedule: request
// i is due at start + i/rate whether or not earlier ones have finished. Each
// connection takes the next due request when it is free.
func openLoop(ctx context.Context, spec loadSpec) (loadResult, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return loadResult{}, fmt.Errorf("load: %w", err)
	}
	path := u.RequestURI()
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: lastgood-bench\r\n\r\n")
	period := time.Duration(float64(time.Second) / spec.Rate)
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(spec.Warmup)
	end := measureFrom.Add(spec.Duration)

	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	lat := make([][]time.Duration, spec.Conns)
	for w := range spec.Conns {
		wg.Go(func() {
			c := &client{addr: u.Host, request: request}
			defer c.close()
			for ctx.Err() == nil {
				due := start.Add(time.Duration(next.Add(1)-1) * period)
				if !due.Before(end) {
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if err := c.do(); err != nil {
					errs.Add(1)
					c.close()
					continue
				}
				if !due.Before(measureFrom) {
					lat[w] = append(lat[w], time.Since(due))
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return loadResult{}, fmt.Errorf("load: %w", ctx.Err())
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := loadResult{URL: spec.URL, Offered: spec.Rate, Requests: len(all), Errors: int(errs.Load())}
	if len(all) == 0 {
		return res, fmt.Errorf("load %s: no successful request (%d errors)", spec.URL, res.Errors)
	}
	res.Achieved = float64(len(all)) / spec.Duration.Seconds()
	q := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	res.P50, res.P90, res.P99, res.P999, res.Max = q(0.5), q(0.9), q(0.99), q(0.999), all[len(all)-1]
	return res, nil
}

var contentLength = []byte("Content-Length:")

// client is a minimal HTTP/1.1 keep-alive client for one fixed GET whose
// response carries a Content-Length; it is cheap enough not to be the
// bottleneck of the measurement.
type client struct {
	addr    string
	request []byte
	conn    net.Conn
	br      *bufio.Reader
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) do() error {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(c.request); err != nil {
		return err
	}
	status, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(status) < 12 || string(status[9:12]) != "200" {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			value := bytes.TrimSpace(line[len(contentLength):])
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return fmt.Errorf("content-length %q: %w", value, err)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = c.br.Discard(length)
	return err
}
