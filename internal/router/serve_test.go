package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serveRouter runs r.Serve on a loopback listener until ctx ends, and
// returns its address and the channel that gets Serve's result.
func serveRouter(t *testing.T, ctx context.Context, r *Router) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	return ln.Addr().String(), served
}

func TestServeShutsDownGracefully(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	backend := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	}))
	r := New("web")
	r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(backend)}}}})
	ctx, cancel := context.WithCancel(t.Context())
	addr, served := serveRouter(t, ctx, r)
	c := newClient(t)
	if res := get(t, c, "http://"+addr+"/"); res.body != "done" {
		t.Fatalf("before shutdown: %d %q", res.status, res.body)
	}

	slow := make(chan response, 1)
	go func() {
		res, err := c.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- response{body: err.Error()}
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		slow <- response{status: res.StatusCode, body: string(body)}
	}()
	<-entered
	cancel()
	eventually(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if res := <-slow; res.status != http.StatusOK || res.body != "done" {
		t.Errorf("in-flight request during shutdown: %d %q, want 200 done", res.status, res.body)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its last request finished")
	}
}

func TestServeReportsListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := New("web").Serve(t.Context(), ln); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}
