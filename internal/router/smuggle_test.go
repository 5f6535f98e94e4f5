package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The request smuggling tests: each sends an attack with raw sockets to a
// real router (Serve) in front of a real net/http backend, over the
// router's pooled backend connections, then checks what the backend saw
// and what an innocent client gets next.

// recordingBackend is a net/http backend that answers every request with
// its method, path and Host, and records the same for each request it
// reads, in order.
type recordingBackend struct {
	srv  *http.Server
	addr string
	mu   sync.Mutex
	seen []string
}

func startRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	b := &recordingBackend{}
	srv := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		line := fmt.Sprintf("%s %s host=%s xff=%s", req.Method, req.URL.Path, req.Host, req.Header.Get("X-Forwarded-For"))
		b.mu.Lock()
		b.seen = append(b.seen, line)
		b.mu.Unlock()
		io.WriteString(w, line)
	}))
	b.addr = hostport(srv)
	return b
}

func (b *recordingBackend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// smuggledGET is the request an attacker hides in a body.
const smuggledGET = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// victimAfter sends attack on one connection, reads its answer (any), then
// sends GET /victim on a second connection and returns the victim's
// response. Both go to one backend, so the victim's request reuses the
// backend connection the attack used.
func victimAfter(t *testing.T, url, attack string) response {
	t.Helper()
	conn, br := rawConn(t, url)
	io.WriteString(conn, attack)
	http.ReadResponse(br, nil) // the attacker's answer, whatever it is
	conn.Close()
	victim, vbr := rawConn(t, url)
	io.WriteString(victim, "GET /victim HTTP/1.1\r\nHost: a\r\n\r\n")
	return readResponse(t, vbr, "GET")
}

func TestSmugglingThroughConnectionHeader(t *testing.T) {
	for _, tt := range []struct{ name, attack string }{
		{"Connection: Content-Length", "POST /a HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(smuggledGET)) + smuggledGET},
		{"Connection: content-length among others", "POST /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, content-length\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(smuggledGET)) + smuggledGET},
		{"Connection: Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggledGET), smuggledGET)},
		{"Connection: Host", "POST /a HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(smuggledGET)) + smuggledGET},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := startRecordingBackend(t)
			r := New("web")
			r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{b.addr}}}})
			url := startServe(t, r)
			res := victimAfter(t, url, tt.attack)
			if res.status != 200 || !strings.HasPrefix(res.body, "GET /victim host=a xff=127.0.0.1") {
				t.Errorf("the victim got %d %q, want the answer to its own GET /victim", res.status, res.body)
			}
			seen := b.requests()
			for _, s := range seen {
				if strings.Contains(s, "/smuggled") {
					t.Errorf("the backend read a smuggled request: %q (all: %q)", s, seen)
				}
			}
			if len(seen) != 2 || !strings.HasPrefix(seen[0], "POST /a host=a xff=127.0.0.1") {
				t.Errorf("backend saw %q, want the POST with its Host and X-Forwarded-For, then the victim's GET", seen)
			}
		})
	}
}

// TestConnectionCannotStripRouterHeaders: naming the router's own headers
// in Connection neither removes what the router sets nor lets the client's
// values through.
func TestConnectionCannotStripRouterHeaders(t *testing.T) {
	echo := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "xff=%q xfh=%q xfp=%q host=%q", req.Header.Values("X-Forwarded-For"),
			req.Header.Values("X-Forwarded-Host"), req.Header.Values("X-Forwarded-Proto"), req.Host)
	}))
	r := oneRoute(t, echo)
	conn, br := rawConn(t, startServe(t, r))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: shop\r\nConnection: X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\n\r\n")
	res := readResponse(t, br, "GET")
	want := `xff=["127.0.0.1"] xfh=["shop"] xfp=["http"] host="shop"`
	if res.status != 200 || res.body != want {
		t.Errorf("backend saw %d %q, want %q", res.status, res.body, want)
	}
}

// rawResponder answers each request it reads on a connection with the
// next of responses (the last one repeats), writing exactly those bytes,
// and closes the connection after a response when closeAfter says so.
func rawResponder(t *testing.T, responses []string, closeAfter func(i int) bool) string {
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
	var mu sync.Mutex
	next := 0
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
					mu.Lock()
					i := min(next, len(responses)-1)
					next++
					mu.Unlock()
					io.WriteString(conn, responses[i])
					if closeAfter(i) {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestUnusualResponseFramingIsRefused: responses whose framing the fast
// path could relay differently from net/http are answered 502, and the
// client's connection still carries its next request correctly.
func TestUnusualResponseFramingIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name, response string
		closes         bool
	}{
		// net/http reads this body close-delimited: the chunk framing is
		// part of the body.
		{"HTTP/1.0 with Transfer-Encoding", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true},
		{"Connection: Content-Length", "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello", false},
		{"Connection: Transfer-Encoding", "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"Content-Length and Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"two Transfer-Encodings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"Transfer-Encoding: gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawResponder(t, []string{tt.response, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"},
				func(i int) bool { return i == 0 && tt.closes })
			r := New("web")
			r.Set(Table{Routes: []Route{{Revision: 3, Weight: 1, Backends: []string{addr}}}})
			conn, br := rawConn(t, startServe(t, r))
			io.WriteString(conn, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
			if res := readResponse(t, br, "GET"); res.status != 502 || res.header.Get(RevisionHeader) != "3" {
				t.Fatalf("got %d %q %v, want the router's 502", res.status, res.body, res.header)
			}
			io.WriteString(conn, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
			if res := readResponse(t, br, "GET"); res.status != 200 || res.body != "next" {
				t.Errorf("the next request on the connection got %d %q, want 200 \"next\"", res.status, res.body)
			}
		})
	}
}
