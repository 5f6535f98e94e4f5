package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/prometheustest"
)

// target is a real scrape target: an HTTP server in the test process that
// exposes, in the Prometheus text format, a counter that grows by 5 at
// every scrape for revision 2 and stays 0 for revision 1, and a gauge with
// one value per revision.
type target struct {
	srv     *httptest.Server
	scrapes atomic.Int64
}

func startTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := tg.scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP checkout_failed_total Failed checkouts.\n# TYPE checkout_failed_total counter\n")
		fmt.Fprintf(w, "checkout_failed_total{revision=\"1\"} 0\n")
		fmt.Fprintf(w, "checkout_failed_total{revision=\"2\"} %d\n", 5*n)
		fmt.Fprintf(w, "# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\n")
		fmt.Fprintf(w, "queue_depth{revision=\"1\"} 3\n")
		fmt.Fprintf(w, "queue_depth{revision=\"2\"} 42\n")
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

// startPrometheus runs the real Prometheus server on a free 127.0.0.1
// port, scraping tg every second (internal/prometheustest), and returns its
// address once the target's samples can be queried.
func startPrometheus(t *testing.T, tg *target) string {
	t.Helper()
	return prometheustest.Address(prometheustest.Start(t, "target", tg.srv.Listener.Addr().String(), `up == 1`))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitForQuery polls until query returns at least one sample. Targets show
// up several seconds after /-/ready, so readiness is not enough.
func waitForQuery(t *testing.T, address, query string) {
	t.Helper()
	c, err := Compile(manifest.Prometheus{Address: address, Query: query}, "result < 0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(90 * time.Second)
	var last Outcome
	for time.Now().Before(deadline) {
		last = c.Evaluate(context.Background(), TemplateData{})
		if last.Err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no data for %s within 90s (last: %v)", query, last.Err)
}

// hangingServer accepts TCP connections and never answers on them.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// closedAddress is an address where nothing listens.
func closedAddress(t *testing.T) string {
	return "http://" + freeAddr(t)
}
