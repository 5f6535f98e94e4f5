package router

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the router and not a recorder.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// benchRouter returns a router with two weighted revisions on one backend
// that answers "ok", and the given match rules.
func benchRouter(b *testing.B, rules ...Match) *Router {
	backend := startHandler(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "ok")
	}))
	r := New("bench")
	b.Cleanup(r.transport.CloseIdleConnections)
	r.Set(Table{Routes: []Route{
		{Revision: 1, Weight: 9, Backends: []string{hostport(backend)}},
		{Revision: 2, Weight: 1, Backends: []string{hostport(backend)}},
	}, Match: rules})
	return r
}

// benchRules are two rules that the benchmarks' request does not satisfy,
// so that every rule is checked against every header and cookie.
var benchRules = []Match{
	{Header: "X-Lastgood-Canary", Value: "yes", Revision: 2},
	{Cookie: "beta", Value: "on", Revision: 2},
}

func BenchmarkServeHTTP(b *testing.B) { benchServeHTTP(b) }

// BenchmarkServeHTTPRules is BenchmarkServeHTTP with two match rules that
// the request does not satisfy.
func BenchmarkServeHTTPRules(b *testing.B) { benchServeHTTP(b, benchRules...) }

func benchServeHTTP(b *testing.B, rules ...Match) {
	r := benchRouter(b, rules...)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://app/", nil)
		req.Header.Set("Cookie", "theme=dark; session=0123456789abcdef")
		w := &discardWriter{header: http.Header{}}
		for pb.Next() {
			clear(w.header)
			w.status = 0
			r.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}

// BenchmarkServe measures the fast path: keep-alive connections send a
// request with a few headers and cookies and read the response with a
// client that allocates nothing.
func BenchmarkServe(b *testing.B) { benchServe(b) }

// BenchmarkServeRules is BenchmarkServe with two match rules that the
// request does not satisfy.
func BenchmarkServeRules(b *testing.B) { benchServe(b, benchRules...) }

func benchServe(b *testing.B, rules ...Match) {
	r := benchRouter(b, rules...)
	addr := strings.TrimPrefix(startServe(b, r), "http://")
	request := []byte("GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: bench\r\nAccept: */*\r\n" +
		"Cookie: theme=dark; session=0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for pb.Next() {
			if _, err := conn.Write(request); err != nil {
				b.Error(err)
				return
			}
			if err := readBenchResponse(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// readBenchResponse reads one 200 response with a Content-Length body.
func readBenchResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return &benchError{line: string(line)}
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			l, _ := parseLength(bytes.TrimSpace(v))
			n = int(l)
		}
	}
	if n < 0 {
		return &benchError{line: "no Content-Length"}
	}
	_, err = br.Discard(n)
	return err
}

type benchError struct{ line string }

func (e *benchError) Error() string { return "unexpected response: " + e.line }

// BenchmarkPick measures the choice of a route for a parsed fast-path
// request, without and with match rules (that it does not satisfy).
func BenchmarkPick(b *testing.B) {
	var h requestHead
	head := []byte("GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: bench\r\nAccept: */*\r\n" +
		"Cookie: theme=dark; session=0123456789abcdef\r\n\r\n")
	if err := parseRequestHead(head, &h); err != nil {
		b.Fatal(err)
	}
	for _, bench := range []struct {
		name  string
		rules []Match
	}{{"rules=0", nil}, {"rules=2", benchRules}} {
		b.Run(bench.name, func(b *testing.B) {
			r := New("bench")
			r.Set(Table{Routes: []Route{
				{Revision: 1, Weight: 9, Backends: []string{"127.0.0.1:1"}},
				{Revision: 2, Weight: 1, Backends: []string{"127.0.0.1:2"}},
			}, Match: bench.rules})
			b.ReportAllocs()
			for b.Loop() {
				_, be, _ := r.pick(&h)
				be.inFlight.Add(-1)
			}
		})
	}
}
