package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOpenLoopKeepsTheRateAndReports(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	res, err := openLoop(t.Context(), loadSpec{URL: srv.URL + "/x", Rate: 400, Conns: 4, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Requests != 200 {
		t.Errorf("%d requests, %d errors; want exactly 200 due in the measured half second and none failed", res.Requests, res.Errors)
	}
	if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max {
		t.Errorf("quantiles out of order: %+v", res)
	}

	var out strings.Builder
	cmp := comparison{
		Throughput: map[string][]float64{"direct": {100}, "router": {95}, "nginx": {100}},
		Fractions:  []float64{0.5},
		Latency:    map[string][]loadResult{"direct": {res}, "router": {res}, "nginx": {res}},
		CPU:        map[string][]time.Duration{},
	}
	writeReport(&out, []target{{name: "direct"}, {name: "router"}, {name: "nginx"}}, cmp)
	if !strings.Contains(out.String(), "| throughput router/nginx ≥ 0.9 | 0.95 | yes |") {
		t.Errorf("report lacks the throughput goal line:\n%s", out.String())
	}
}

func TestOpenLoopCountsFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	res, err := openLoop(t.Context(), loadSpec{URL: srv.URL, Rate: 100, Conns: 2, Duration: 200 * time.Millisecond})
	if err == nil || res.Errors == 0 {
		t.Errorf("404s: got %+v, %v; want errors reported", res, err)
	}
}
