package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamingChunksArriveBeforeTheEnd holds the backend's response open
// after its first chunk until the client has read that chunk through the
// router, for server-sent events and for plain chunked bodies.
func TestStreamingChunksArriveBeforeTheEnd(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		for _, contentType := range []string{"text/event-stream", "application/octet-stream"} {
			t.Run(contentType, func(t *testing.T) {
				gotFirst := make(chan struct{})
				backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					w.Header().Set("Content-Type", contentType)
					io.WriteString(w, "data: one\n\n")
					w.(http.Flusher).Flush()
					select {
					case <-gotFirst:
					case <-time.After(10 * time.Second):
					}
					io.WriteString(w, "data: two\n\n")
				}))
				r := New("web")
				r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(backend)}}}})
				url, c := serve(t, r), newClient(t)

				res, err := c.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				br := bufio.NewReader(res.Body)
				read := make(chan string, 1)
				go func() {
					line, _ := br.ReadString('\n')
					read <- line
				}()
				select {
				case line := <-read:
					if line != "data: one\n" {
						t.Fatalf("first line %q", line)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("first chunk did not arrive while the backend held the response open")
				}
				close(gotFirst)
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != "\ndata: two\n\n" {
					t.Errorf("rest %q, %v", rest, err)
				}
			})
		}
	})
}

// echoUpgrade is a backend that switches to a line echo protocol on
// "Upgrade: echo", using only the standard library.
func echoUpgrade(w http.ResponseWriter, req *http.Request) {
	if !strings.EqualFold(req.Header.Get("Upgrade"), "echo") {
		http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString(line)
		brw.Flush()
	}
}

// upgrade dials addr and performs the echo protocol's handshake.
func upgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	return conn, br, res
}

func TestUpgradeEchoesThroughRouter(t *testing.T) {
	backend := startHandler(t, http.HandlerFunc(echoUpgrade))
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 5, Weight: 1, Backends: []string{hostport(backend)}}}})
	ctx, cancel := context.WithCancel(t.Context())
	addr, served := serveRouter(t, ctx, r)

	conn, br, res := upgrade(t, addr)
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get(RevisionHeader) != "5" {
		t.Fatalf("handshake: %s with %s=%q, want 101 from revision 5", res.Status, RevisionHeader, res.Header.Get(RevisionHeader))
	}
	for _, msg := range []string{"ping\n", "second message\n"} {
		io.WriteString(conn, msg)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := br.ReadString('\n'); err != nil || got != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	if s := statsOf(t, r, 5); s.InFlight != 1 {
		t.Errorf("an open upgraded connection counts in flight: got %d", s.InFlight)
	}

	// Shutting down ends the upgraded connection too.
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return with an upgraded connection open")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err != io.EOF {
		t.Errorf("read after shutdown: %v, want EOF", err)
	}
	if s := statsOf(t, r, 5); s.InFlight != 0 || s.Status[1] != 1 {
		t.Errorf("after shutdown: %+v, want one 1xx and nothing in flight", s)
	}
}
