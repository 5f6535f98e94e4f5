package router

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestParseRequestHead(t *testing.T) {
	head := "GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nCookie: a=1\r\nConnection: keep-alive\r\n" +
		"X-Secret: s\r\nX-Forwarded-For: 6.6.6.6\r\nTE: trailers\r\nContent-Length: 0\r\nAccept:  */* \r\n\r\n"
	var h requestHead
	if err := parseRequestHead([]byte(head), &h); err != nil {
		t.Fatal(err)
	}
	if string(h.method) != "GET" || string(h.target) != "/p?q=1" || string(h.host) != "shop" || h.close || !h.trailers {
		t.Fatalf("parsed %+v", h)
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	h.writeForwarded(w, "10.1.2.3")
	w.Flush()
	want := "GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nCookie: a=1\r\nX-Secret: s\r\nContent-Length: 0\r\nAccept: */*\r\nTe: trailers\r\n" +
		"X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Host: shop\r\nX-Forwarded-Proto: http\r\n\r\n"
	if out.String() != want {
		t.Errorf("forwarded head\n%q\nwant\n%q", out.String(), want)
	}

	for head, want := range map[string]error{
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n":                                           errNotSimple,
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n":                                            errNotSimple,
		"GET / HTTP/1.1\r\n\r\n":                                                      errNotSimple, // no Host: net/http's 400
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n":                                errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n":                     errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n":                    errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n":                        errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\n\r\n":                   errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Content-Length\r\n\r\n":      errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n":                       errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n":                     errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n": errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n":             errNotSimple,
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n":                                         errNotSimple,
		"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n":                                        errNotSimple,
		"GET /\xc3\xa4 HTTP/1.1\r\nHost: a\r\n\r\n":                                   errNotSimple,
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n":                                        errNotSimple,
		"GET /?a;b HTTP/1.1\r\nHost: a\r\n\r\n":                                       errNotSimple,
		"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n":                                      errNotSimple,
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n":   errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\n":                                               errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nextra":                                      errMalformed,
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n":                                          errMalformed,
	} {
		if err := parseRequestHead([]byte(head), &h); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", head, err, want)
		}
	}
}

func TestParseResponseHead(t *testing.T) {
	var h responseHead
	head := "HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nLastgood-Revision: 9\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nConnection: close\r\n\r\n"
	if err := parseResponseHead([]byte(head), &h); err != nil {
		t.Fatal(err)
	}
	if h.status != 200 || !h.chunked || !h.close {
		t.Fatalf("parsed %+v", h)
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	h.writeRelayed(w, []byte("GET"), "3", "lg=3; Path=/", false)
	w.Flush()
	// With close, net/http drops the Connection field before its proxy
	// reads the names in it, and so relays X-Hop; the fast path does too.
	want := "HTTP/1.1 200 OK\r\nX-Hop: 1\r\nX-Keep: 2\r\nLastgood-Revision: 3\r\nSet-Cookie: lg=3; Path=/\r\nTransfer-Encoding: chunked\r\n\r\n"
	if out.String() != want {
		t.Errorf("relayed head\n%q\nwant\n%q", out.String(), want)
	}
	if err := parseResponseHead([]byte("HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nContent-Length: 0\r\n\r\n"), &h); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	h.writeRelayed(w, []byte("GET"), "3", "", false)
	w.Flush()
	if want := "HTTP/1.1 200 OK\r\nX-Keep: 2\r\nContent-Length: 0\r\nLastgood-Revision: 3\r\n\r\n"; out.String() != want {
		t.Errorf("relayed head\n%q\nwant\n%q (the field Connection names dropped)", out.String(), want)
	}
	for _, bad := range []string{
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n",
		"hello world\r\n\r\n",
	} {
		if err := parseResponseHead([]byte(bad), &h); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestChunkSize(t *testing.T) {
	for line, want := range map[string]int64{"0": 0, "1a": 26, "FF;x=y": 255, "10 ": 16, "0005": 5, "a;x ": 10} {
		if n, ok := chunkSize([]byte(line)); !ok || n != want {
			t.Errorf("chunkSize(%q) = %d, %v; want %d", line, n, ok, want)
		}
	}
	for _, bad := range []string{"", "x", ";", "1000000000000000", "5 ;x", " 5", "5x"} {
		if _, ok := chunkSize([]byte(bad)); ok {
			t.Errorf("chunkSize(%q) accepted", bad)
		}
	}
}

// FuzzParseRequestHead checks that no input panics the parser, and that a
// head it accepts is forwarded as a head it accepts again, with the same
// request line and Host.
func FuzzParseRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close, X\r\nX: 1\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\nCookie: lg=2\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nX-Forwarded-For: 1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		var h requestHead
		if parseRequestHead(head, &h) != nil {
			return
		}
		if len(h.method) == 0 || len(h.target) == 0 || h.target[0] != '/' || h.host == nil {
			t.Fatalf("accepted %q as %+v", head, h)
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		h.writeForwarded(w, "127.0.0.1")
		w.Flush()
		var again requestHead
		if err := parseRequestHead(out.Bytes(), &again); err != nil {
			t.Fatalf("forwarded head %q of %q does not parse: %v", out.Bytes(), head, err)
		}
		if !bytes.Equal(again.method, h.method) || !bytes.Equal(again.target, h.target) ||
			!bytes.Equal(again.host, h.host) || again.contentLength != h.contentLength {
			t.Fatalf("forwarded head %q of %q parses differently", out.Bytes(), head)
		}
	})
}
