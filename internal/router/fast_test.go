package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawConn dials the router at url (as startServe returns it) for tests that
// write requests byte by byte.
func rawConn(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn, bufio.NewReader(conn)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) response {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: res.StatusCode, body: string(body), header: res.Header}
}

// echoPath answers with the request's method and path.
func echoPath(w http.ResponseWriter, req *http.Request) {
	io.WriteString(w, req.Method+" "+req.URL.Path)
}

func oneRoute(t testing.TB, backend *httptest.Server) *Router {
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(backend)}}}})
	return r
}

func TestPlainRequestsStayOnTheFastPath(t *testing.T) {
	r := oneRoute(t, startHandler(t, http.HandlerFunc(echoPath)))
	url, c := startServe(t, r), newClient(t)
	for range 10 {
		if res := get(t, c, url+"/a"); res.body != "GET /a" || res.header.Get(RevisionHeader) != "1" {
			t.Fatalf("got %d %q", res.status, res.body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/p", strings.NewReader("body"))
	if res := do(t, c, req); res.body != "POST /p" {
		t.Fatalf("POST: %q", res.body)
	}
	if n := r.handoffs.Load(); n != 0 {
		t.Errorf("%d connections handed to net/http, want 0", n)
	}
}

// TestUnusualRequestsGoToNetHTTP checks that each kind of request the fast
// path does not handle is served, by net/http, on a connection handed over.
func TestUnusualRequestsGoToNetHTTP(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		fmt.Fprintf(w, "%s %s %s", req.Proto, req.URL.Path, body)
	}))
	tests := []struct {
		name, request, want string
	}{
		{"http/1.0", "GET /old HTTP/1.0\r\nHost: a\r\n\r\n", "HTTP/1.1 /old "},
		{"100-continue", "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 /e hi"},
		{"chunked upload", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "HTTP/1.1 /c hi"},
		{"absolute form", "GET http://a/abs HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 /abs "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oneRoute(t, backend)
			conn, br := rawConn(t, startServe(t, r))
			io.WriteString(conn, tt.request)
			res := readResponse(t, br, "GET")
			if strings.HasPrefix(tt.request, "POST") && res.status == http.StatusContinue {
				res = readResponse(t, br, "GET")
			}
			if res.status != http.StatusOK || res.body != tt.want || res.header.Get(RevisionHeader) != "1" {
				t.Errorf("got %d %q (%s=%q), want 200 %q", res.status, res.body, RevisionHeader, res.header.Get(RevisionHeader), tt.want)
			}
			if n := r.handoffs.Load(); n != 1 {
				t.Errorf("%d connections handed to net/http, want 1", n)
			}
		})
	}
}

func TestPipelinedRequests(t *testing.T) {
	r := oneRoute(t, startHandler(t, http.HandlerFunc(echoPath)))
	conn, br := rawConn(t, startServe(t, r))
	io.WriteString(conn, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"+
		"HEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []struct{ method, body string }{{"GET", "GET /1"}, {"POST", "POST /2"}, {"HEAD", ""}, {"GET", "GET /4"}} {
		if res := readResponse(t, br, want.method); res.status != http.StatusOK || res.body != want.body {
			t.Fatalf("%s: got %d %q, want 200 %q", want.method, res.status, res.body, want.body)
		}
	}
	if s := statsOf(t, r, 1); s.Requests != 4 || s.Status[2] != 4 {
		t.Errorf("stats %+v, want 4 requests, all 2xx", s)
	}
}

// countingBackend counts the connections its server accepts.
func countingBackend(t testing.TB, h http.Handler) (*httptest.Server, *atomic.Int64) {
	var accepts atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			accepts.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &accepts
}

func TestBackendConnectionsAreReused(t *testing.T) {
	backend, accepts := countingBackend(t, http.HandlerFunc(echoPath))
	r := oneRoute(t, backend)
	url, c := startServe(t, r), newClient(t)
	for range 50 {
		get(t, c, url+"/x")
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("50 sequential requests opened %d backend connections, want 1", n)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				res, err := c.Get(url + "/y")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := accepts.Load(); n > 9 {
		t.Errorf("8 concurrent clients opened %d backend connections, want at most 9", n)
	}
}

// TestStaleBackendConnectionIsRetried: the backend closes idle keep-alive
// connections after 50ms; a GET on such a pooled connection is sent again on
// a new one.
func TestStaleBackendConnectionIsRetried(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echoPath))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	r := oneRoute(t, srv)
	url, c := startServe(t, r), newClient(t)
	for i := range 3 {
		if res := get(t, c, url+"/s"); res.status != http.StatusOK || res.body != "GET /s" {
			t.Fatalf("request %d: %d %q", i, res.status, res.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if s := statsOf(t, r, 1); s.Errors != 0 {
		t.Errorf("stats %+v, want no errors", s)
	}
}

func TestBodylessResponses(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	r := oneRoute(t, backend)
	conn, br := rawConn(t, startServe(t, r))
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"HEAD", "/", 200, ""},
		{"GET", "/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"GET", "/", 200, "hello"},
		{"HEAD", "/", 200, ""},
		{"GET", "/", 200, "hello"},
	} {
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", tt.method, tt.path)
		res := readResponse(t, br, tt.method)
		if res.status != tt.status || res.body != tt.body || res.header.Get(RevisionHeader) != "1" {
			t.Fatalf("%s %s: %d %q, want %d %q", tt.method, tt.path, res.status, res.body, tt.status, tt.body)
		}
		if tt.method == "HEAD" && res.header.Get("Content-Length") != "5" {
			t.Errorf("HEAD lost the Content-Length: %v", res.header)
		}
	}
}

// rawBackend answers every request on a connection with the bytes of
// respond, then closes the connection if close is set.
func rawBackend(t *testing.T, respond string, close bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(conn, respond)
					if close {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestChunkedResponseIsReframed: a chunked body reaches the client with
// the same data and trailers in canonical framing (lower-case sizes, no
// chunk extensions), on a connection that carries the next request.
func TestChunkedResponseIsReframed(t *testing.T) {
	chunked := "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nChecksum: 42\r\n\r\n"
	want := "5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nChecksum: 42\r\n\r\n"
	addr := rawBackend(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Checksum\r\n\r\n"+chunked, false)
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 2, Weight: 1, Backends: []string{addr}}}})
	conn, br := rawConn(t, startServe(t, r))
	for i := range 2 {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, announced := res.Trailer["Checksum"]; res.TransferEncoding == nil || res.Header.Get(RevisionHeader) != "2" || !announced {
			t.Fatalf("response %d: not chunked, no revision or no Trailer: %+v", i, res.Header)
		}
		// Read the raw body: the head parser stopped right before it.
		raw := make([]byte, len(want))
		if _, err := io.ReadFull(br, raw); err != nil {
			t.Fatal(err)
		}
		if string(raw) != want {
			t.Fatalf("response %d: body\n%q\nwant\n%q", i, raw, want)
		}
	}
}

// TestCloseDelimitedResponse: a body that ends when the backend closes
// reaches the client chunked, so the client's connection carries the next
// request.
func TestCloseDelimitedResponse(t *testing.T) {
	addr := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true)
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 3, Weight: 1, Backends: []string{addr}}}})
	conn, br := rawConn(t, startServe(t, r))
	for range 2 {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 || string(body) != "until the end" || res.TransferEncoding == nil || res.Close {
			t.Fatalf("got %d %q (%v), chunked %v, close %v", res.StatusCode, body, err, res.TransferEncoding, res.Close)
		}
	}
	if s := statsOf(t, r, 3); s.Requests != 2 || s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestLargeBodiesBothWays(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("Body-Sha256", fmt.Sprintf("%x", sum))
		if req.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		w.Write(body)
	}))
	payload := make([]byte, 6<<20+123)
	rand.Read(payload)
	want := fmt.Sprintf("%x", sha256.Sum256(payload))
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := oneRoute(t, backend)
		url, c := serve(t, r), newClient(t)
		for _, q := range []string{"", "?chunked"} {
			req, _ := http.NewRequest(http.MethodPut, url+"/up"+q, bytes.NewReader(payload))
			res := do(t, c, req)
			if res.status != 200 || res.header.Get("Body-Sha256") != want || res.body != string(payload) {
				t.Fatalf("%s: status %d, backend sum %s, echo of %d bytes equal: %v", q, res.status, res.header.Get("Body-Sha256"), len(res.body), res.body == string(payload))
			}
		}
	})
}

func TestMalformedRequestsGet400(t *testing.T) {
	r := oneRoute(t, startHandler(t, http.HandlerFunc(echoPath)))
	url := startServe(t, r)
	for _, bad := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n: empty\r\n\r\n",
	} {
		conn, br := rawConn(t, url)
		io.WriteString(conn, bad)
		res := readResponse(t, br, "GET")
		if res.status != http.StatusBadRequest {
			t.Errorf("%q: got %d %q, want 400", bad, res.status, res.body)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%q: connection not closed after 400: %v", bad, err)
		}
	}
	if s := statsOf(t, r, 1); s.Requests != 0 {
		t.Errorf("a malformed request reached the backend: %+v", s)
	}
}

func TestOversizedHeadGets431(t *testing.T) {
	r := oneRoute(t, startHandler(t, http.HandlerFunc(echoPath)))
	conn, br := rawConn(t, startServe(t, r))
	go func() {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("x", maxHeadBytes)+"\r\n\r\n")
	}()
	if res := readResponse(t, br, "GET"); res.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got %d %q, want 431", res.status, res.body)
	}
}

func TestNoRouteAndDeadBackendKeepTheConnection(t *testing.T) {
	r := New("shop")
	conn, br := rawConn(t, startServe(t, r))
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
	if res := readResponse(t, br, "POST"); res.status != 503 {
		t.Fatalf("no route: %d %q", res.status, res.body)
	}
	r.Set(Table{Routes: []Route{{Revision: 4, Weight: 1, Backends: []string{deadAddr(t)}}}})
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
	if res := readResponse(t, br, "POST"); res.status != 502 || res.header.Get(RevisionHeader) != "4" {
		t.Fatalf("dead backend: %d %v", res.status, res.header)
	}
	backend := startHandler(t, http.HandlerFunc(echoPath))
	r.Set(Table{Routes: []Route{{Revision: 5, Weight: 1, Backends: []string{hostport(backend)}}}})
	io.WriteString(conn, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	if res := readResponse(t, br, "GET"); res.status != 200 || res.body != "GET /after" {
		t.Fatalf("same connection afterwards: %d %q", res.status, res.body)
	}
}

func TestBackendDyingMidChunkedBodyClosesClient(t *testing.T) {
	addr := rawBackend(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true)
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 6, Weight: 1, Backends: []string{addr}}}})
	conn, br := rawConn(t, startServe(t, r))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Fatal("a chunked body cut short by the backend reached the client whole")
	}
	eventually(t, "the request to be counted", func() bool { return statsOf(t, r, 6).Requests == 1 })
	if s := statsOf(t, r, 6); s.Errors != 1 || s.InFlight != 0 {
		t.Errorf("stats %+v, want one error, nothing in flight", s)
	}
}

func TestClientLeavingMidUploadIs499(t *testing.T) {
	entered := make(chan struct{}, 1)
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		io.Copy(io.Discard, req.Body)
	}))
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		r := oneRoute(t, backend)
		conn, _ := rawConn(t, serve(t, r))
		io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 100000))
		<-entered
		conn.Close()
		eventually(t, "the request to be counted", func() bool { return statsOf(t, r, 1).Requests == 1 })
		// It left before its request had reached the replica whole: not
		// the revision's failure.
		if s := statsOf(t, r, 1); s.Status[4] != 1 || s.Errors != 0 || s.InFlight != 0 || s.ProxyErrors != 0 {
			t.Errorf("stats %+v, want one 4xx (499), no error, nothing in flight", s)
		}
	})
}

// TestShutdownCutsRequestsAfterGrace: a request still running five seconds
// after the context ended is cut, and Serve returns.
func TestShutdownCutsRequestsAfterGrace(t *testing.T) {
	entered := make(chan struct{})
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(entered)
		<-req.Context().Done()
	}))
	r := oneRoute(t, backend)
	ctx, cancel := context.WithCancel(t.Context())
	addr, served := serveRouter(t, ctx, r)
	conn, br := rawConn(t, "http://"+addr)
	io.WriteString(conn, "GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err == nil {
			t.Error("Serve returned nil after cutting a request")
		}
		if d := time.Since(start); d < shutdownTimeout-time.Second {
			t.Errorf("Serve returned after %v, before the grace period", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the cut connection still answered")
	}
	eventually(t, "the cut request to be counted", func() bool { return statsOf(t, r, 1).Requests == 1 })
	if s := statsOf(t, r, 1); s.InFlight != 0 || s.Status[4] != 1 || s.Errors != 0 {
		t.Errorf("stats %+v, want one 499, no error, nothing in flight", s)
	}
}
