package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hangingBackend answers /slow only when the request is cancelled (or
// after a minute), and everything else at once.
func hangingBackend(t *testing.T) string {
	return hostport(startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		if req.URL.Path == "/slow" {
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		io.WriteString(w, "fast")
	})))
}

func limitedRoute(addr string, l Limits) Table {
	return Table{Routes: []Route{{Revision: 2, Weight: 1, Backends: []string{addr}}}, Limits: l}
}

func TestResponseTimeoutIs504AndTheRevisionsFailure(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := New("web")
		r.Set(limitedRoute(hangingBackend(t), Limits{ResponseTimeout: 300 * time.Millisecond}))
		url, c := serve(t, r), newClient(t)
		for _, req := range []*http.Request{
			mustRequest(t, http.MethodGet, url+"/slow", ""),
			mustRequest(t, http.MethodPost, url+"/slow", "a body, uploaded before the timeout starts"),
		} {
			res := do(t, c, req)
			if res.status != http.StatusGatewayTimeout || res.header.Get(RevisionHeader) != "2" || !strings.Contains(res.body, "did not answer within 300ms") {
				t.Fatalf("%s: got %d %q %v, want 504 from revision 2", req.Method, res.status, res.body, res.header)
			}
		}
		if res := get(t, c, url+"/fast"); res.status != 200 || res.body != "fast" {
			t.Fatalf("a quick answer after the timeouts: %d %q", res.status, res.body)
		}
		s := statsOf(t, r, 2)
		if s.Requests != 3 || s.Errors != 2 || s.Status[5] != 2 || s.Status[2] != 1 {
			t.Errorf("stats %+v, want the two 504s counted as errors", s)
		}
		if d := s.Latency.Quantile(0.5); d < 250*time.Millisecond {
			t.Errorf("median latency %v: the timed-out requests' waits are not in it", d)
		}
		if len(s.RecentProxyErrors) != 2 || s.RecentProxyErrors[0].Status != 504 || s.RecentProxyErrors[0].Request != "GET /slow" ||
			!strings.Contains(s.RecentProxyErrors[0].Error, "no response within 300ms") || s.RecentProxyErrors[1].Request != "POST /slow" {
			t.Errorf("proxy errors %+v, want both timeouts", s.RecentProxyErrors)
		}
	})
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
	}
	return req
}

// TestResponseTimeoutEndsAtTheHead: a response that starts in time may
// take longer than the timeout to finish.
func TestResponseTimeoutEndsAtTheHead(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "start ")
		w.(http.Flusher).Flush()
		time.Sleep(600 * time.Millisecond)
		io.WriteString(w, "end")
	}))
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := New("web")
		r.Set(limitedRoute(hostport(backend), Limits{ResponseTimeout: 200 * time.Millisecond}))
		if res := get(t, newClient(t), serve(t, r)); res.status != 200 || res.body != "start end" {
			t.Errorf("got %d %q, want the whole streamed body", res.status, res.body)
		}
	})
}

func TestNegativeResponseTimeoutWaits(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	}))
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := New("web")
		r.Set(limitedRoute(hostport(backend), Limits{ResponseTimeout: -1}))
		if res := get(t, newClient(t), serve(t, r)); res.status != 200 || res.body != "late" {
			t.Errorf("got %d %q, want the late answer", res.status, res.body)
		}
	})
}

// TestSlowRequestBodyIsCut: a client that stops sending its body, or
// trickles it past the body timeout, gets 408 and loses the connection;
// the revision is not blamed.
func TestSlowRequestBodyIsCut(t *testing.T) {
	for _, tt := range []struct {
		name   string
		limits Limits
		send   func(conn net.Conn)
	}{
		{"stalled", Limits{BodyIdleTimeout: 200 * time.Millisecond}, func(conn net.Conn) {
			io.WriteString(conn, "x") // then nothing
		}},
		{"trickled", Limits{BodyTimeout: 400 * time.Millisecond, BodyIdleTimeout: 10 * time.Second}, func(conn net.Conn) {
			for range 200 {
				if _, err := io.WriteString(conn, "x"); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachPath(t, func(t *testing.T, serve serveFunc) {
				r := New("web")
				r.Set(limitedRoute(hangingBackend(t), tt.limits))
				conn, br := rawConn(t, serve(t, r))
				io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
				go tt.send(conn)
				res := readResponse(t, br, "POST")
				if res.status != http.StatusRequestTimeout {
					t.Fatalf("got %d %q, want 408", res.status, res.body)
				}
				// Closed: an EOF, or a reset as the client still sends.
				if _, err := io.Copy(io.Discard, br); isTimeout(err) {
					t.Errorf("after the 408: %v, want the connection closed", err)
				}
				eventually(t, "the request to be counted", func() bool { return statsOf(t, r, 2).Requests == 1 })
				if s := statsOf(t, r, 2); s.Errors != 0 || s.Status[4] != 1 || s.InFlight != 0 {
					t.Errorf("stats %+v, want one 4xx and no error", s)
				}
			})
		})
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	r := New("web")
	r.Set(limitedRoute(hangingBackend(t), Limits{IdleTimeout: 300 * time.Millisecond}))
	url := startServe(t, r)
	for _, first := range []string{
		"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n",
		// Chunked: the connection goes to net/http.
		"POST /fast HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	} {
		conn, br := rawConn(t, url)
		io.WriteString(conn, first)
		if res := readResponse(t, br, "GET"); res.status != 200 {
			t.Fatalf("%q: %d %q", first, res.status, res.body)
		}
		start := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%q: an idle connection read %v, want EOF", first, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%q: closed after %v", first, d)
		}
	}
	// New limits reach the net/http path's connections too.
	r.Set(limitedRoute(hangingBackend(t), Limits{IdleTimeout: time.Hour}))
	conn, br := rawConn(t, url)
	io.WriteString(conn, "GET /fast HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
	if res := readResponse(t, br, "GET"); res.status != 200 {
		t.Fatalf("HTTP/1.0: %d", res.status)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := br.ReadByte(); !isTimeout(err) {
		t.Errorf("with an hour's idle timeout the connection ended within a second: %v", err)
	}
}

func TestConnectionCapPerApp(t *testing.T) {
	r := New("web")
	r.Set(limitedRoute(hangingBackend(t), Limits{MaxConnections: 3}))
	url := startServe(t, r)
	// Two idle fast-path connections and one net/http one fill the cap.
	for range 2 {
		conn, br := rawConn(t, url)
		io.WriteString(conn, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
	}
	old, oldbr := rawConn(t, url)
	io.WriteString(old, "GET /fast HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
	readResponse(t, oldbr, "GET")

	conn, br := rawConn(t, url)
	res := readResponse(t, br, "GET")
	if res.status != 503 || !strings.Contains(res.body, "too many connections to web") || res.header.Get("Retry-After") == "" {
		t.Fatalf("a fourth connection got %d %q %v, want 503", res.status, res.body, res.header)
	}
	conn.Close()
	if n := r.RefusedConnections(); n != 1 {
		t.Errorf("RefusedConnections = %d, want 1", n)
	}
	// Closing the net/http connection frees its place.
	old.Close()
	eventually(t, "a place to free", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && res.StatusCode == 200
	})
}

func TestProxyErrorsAreSampled(t *testing.T) {
	http09 := rawBackend(t, "hello from HTTP/0.9\n", true)
	dead := deadAddr(t)
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := New("web")
		url, c := serve(t, r), newClient(t)
		r.Set(Table{Routes: []Route{{Revision: 4, Weight: 1, Backends: []string{http09}}}})
		if res := get(t, c, url+"/a?secret=1"); res.status != 502 {
			t.Fatalf("HTTP/0.9 backend: %d", res.status)
		}
		r.Set(Table{Routes: []Route{{Revision: 4, Weight: 1, Backends: []string{dead}}}})
		for i := range MaxRecentProxyErrors + 3 {
			if res := get(t, c, fmt.Sprintf("%s/dead/%d", url, i)); res.status != 502 {
				t.Fatalf("dead backend: %d", res.status)
			}
		}
		s := statsOf(t, r, 4)
		if s.ProxyErrors != MaxRecentProxyErrors+4 || len(s.RecentProxyErrors) != MaxRecentProxyErrors {
			t.Fatalf("%d proxy errors, %d kept; want %d and %d", s.ProxyErrors, len(s.RecentProxyErrors), MaxRecentProxyErrors+4, MaxRecentProxyErrors)
		}
		first, last := s.RecentProxyErrors[0], s.RecentProxyErrors[MaxRecentProxyErrors-1]
		if first.Request != "GET /dead/3" || last.Request != fmt.Sprintf("GET /dead/%d", MaxRecentProxyErrors+2) ||
			!strings.Contains(last.Error, "connection refused") || last.Status != 502 || last.Time.IsZero() {
			t.Errorf("kept %+v ... %+v, want the last ones, oldest first, saying connection refused", first, last)
		}
	})
	// The fast path says what the HTTP/0.9 backend did.
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 4, Weight: 1, Backends: []string{http09}}}})
	get(t, newClient(t), startServe(t, r)+"/a?secret=1")
	s := statsOf(t, r, 4)
	if len(s.RecentProxyErrors) != 1 || !strings.Contains(s.RecentProxyErrors[0].Error, "HTTP/0.9") || s.RecentProxyErrors[0].Request != "GET /a" {
		t.Errorf("fast path proxy errors %+v, want one naming HTTP/0.9 for GET /a (no query)", s.RecentProxyErrors)
	}
}
