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
// that answers "ok".
func benchRouter(b *testing.B) *Router {
	backend := startHandler(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "ok")
	}))
	r := New("bench")
	b.Cleanup(r.transport.CloseIdleConnections)
	r.Set(Table{Routes: []Route{
		{Revision: 1, Weight: 9, Backends: []string{hostport(backend)}},
		{Revision: 2, Weight: 1, Backends: []string{hostport(backend)}},
	}})
	return r
}

func BenchmarkServeHTTP(b *testing.B) {
	r := benchRouter(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://app/", nil)
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
func BenchmarkServe(b *testing.B) {
	r := benchRouter(b)
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
