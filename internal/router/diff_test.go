package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The differential fuzz targets: the same bytes go through the fast path
// (Serve) and through net/http's path (the same Router serving every
// connection with its httputil.ReverseProxy hatch, forceNetHTTP), over
// pooled backend connections with several requests per connection, and
// what arrives on the other side must be the same.
//
// FuzzDiffRequests compares what the backend receives (and what the client
// gets back); FuzzDiffResponses compares what the client receives of the
// backend's responses. Only what legitimately differs is normalised
// (normalizeHead, normalizeRequest, normalizeResponse):
//
//   - header order and the case of header names;
//   - Date, which net/http's server adds when the backend sent none;
//   - how a body is framed: a chunked or close-delimited body is compared
//     decoded (net/http re-chunks with its own chunk sizes, or sends a
//     Content-Length for a short one), so Content-Length and
//     Transfer-Encoding are compared only on responses without a body;
//   - the order of the names in a Trailer field (net/http rebuilds it from
//     a map);
//   - a request's empty body: no Content-Length or "Content-Length: 0"
//     (net/http's Transport drops it on GET and adds it on POST);
//   - the fields of a 1xx response that the fast path drops as hop-by-hop
//     (also those its Connection names) or the router's own (net/http
//     relays a 1xx's fields unfiltered);
//   - the text of the router's own 502 and 504 answers (the error
//     messages of two parsers) and of its own 4xx refusals;
//   - each path's backend address, which net/http writes as the Host of
//     a request that had none (an HTTP/1.0 request).
//
// And one difference is allowed, in one direction only: the fast path may
// refuse (502, or a body cut off) what net/http relays — "unusual framing
// goes to net/http or is refused" — and the comparison stops there. The
// fast path relaying something net/http refuses, or relaying it
// differently, fails the target.
//
// Run them for long with scripts/fuzz.sh (see docs/router.md); go test
// runs their seeds (testdata/fuzz/...) as unit tests.

// diffEnd is the request the request target appends to every input; its
// answer tells the client that every request before it was answered.
const diffEnd = "GET /__end HTTP/1.1\r\nHost: end\r\n\r\n"

// diffPaths is one backend and router per path, served for a whole fuzz
// run.
type diffPaths struct {
	fast, net *diffPath
}

type diffPath struct {
	name    string
	r       *Router
	url     string
	backend *diffBackend
}

// startDiffPaths starts, for each path, a backend that answer serves and a
// router in front of it.
func startDiffPaths(t testing.TB, answer func(b *diffBackend, req *http.Request, n int) (response string, closeAfter bool)) *diffPaths {
	// net/http's Transport logs bytes a backend sends on an idle
	// connection, which the response target does on purpose.
	out := log.Writer()
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(out) })
	p := &diffPaths{}
	for _, forced := range []bool{false, true} {
		b := startDiffBackend(t, answer)
		r := New("diff")
		r.forceNetHTTP = forced
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{b.addr}}}})
		dp := &diffPath{name: "fast path", r: r, url: startServe(t, r), backend: b}
		if forced {
			dp.name = "net/http"
			p.net = dp
		} else {
			p.fast = dp
		}
	}
	return p
}

// settle waits (a little) for the router to have nothing in flight, so
// that one run's requests end before the next run starts.
func (p *diffPath) settle() {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if s := p.r.Stats(); len(s) == 0 || s[0].InFlight == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// diffBackend is a raw TCP backend that reads requests with net/http's
// parser, records the bytes of each as it arrived, and writes the answer
// its function gives.
type diffBackend struct {
	addr   string
	answer func(b *diffBackend, req *http.Request, n int) (string, bool)

	mu       sync.Mutex
	received [][]byte // raw requests of the current run
	count    int
}

func startDiffBackend(t testing.TB, answer func(b *diffBackend, req *http.Request, n int) (string, bool)) *diffBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &diffBackend{addr: ln.Addr().String(), answer: answer}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					conn.Close()
					mu.Lock()
					delete(conns, conn)
					mu.Unlock()
				}()
				b.serveConn(conn)
			})
		}
	})
	return b
}

// teeReader records what is read through it.
type teeReader struct {
	r   io.Reader
	buf bytes.Buffer
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf.Write(p[:n])
	return n, err
}

func (b *diffBackend) serveConn(conn net.Conn) {
	tee := &teeReader{r: conn}
	br := bufio.NewReader(tee)
	// Requests cut off by a closed connection are not recorded: when they
	// are cut depends on timing. A request that does not parse is.
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !isCut(err) && tee.buf.Len() > br.Buffered() {
				b.record(append([]byte("unparsable: "), tee.buf.Bytes()[:tee.buf.Len()-br.Buffered()]...))
			}
			return
		}
		_, err = io.Copy(io.Discard, req.Body)
		consumed := tee.buf.Len() - br.Buffered()
		raw := append([]byte(nil), tee.buf.Bytes()[:consumed]...)
		rest := append([]byte(nil), tee.buf.Bytes()[consumed:]...)
		tee.buf.Reset()
		tee.buf.Write(rest)
		if err != nil {
			if !isCut(err) {
				b.record(append([]byte("body error: "), raw...))
			}
			return
		}
		n := b.record(raw)
		answer, closeAfter := b.answer(b, req, n)
		if _, err := io.WriteString(conn, answer); err != nil || closeAfter {
			return
		}
	}
}

// isCut reports whether a read ended because the connection did.
func isCut(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) || strings.Contains(err.Error(), "connection reset")
}

// record keeps a raw request and returns its number in the run.
func (b *diffBackend) record(raw []byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.received = append(b.received, raw)
	b.count++
	return b.count - 1
}

// reset starts a run.
func (b *diffBackend) reset() {
	b.mu.Lock()
	b.received, b.count = nil, 0
	b.mu.Unlock()
}

// requests returns the raw requests of the run, with the backend's own
// address (which net/http's Transport writes as the Host of a request that
// had none) replaced by "backend": the two paths have two backends.
func (b *diffBackend) requests() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][]byte, len(b.received))
	for i, r := range b.received {
		out[i] = bytes.ReplaceAll(r, []byte(b.addr), []byte("backend"))
	}
	return out
}

// normalizeHead returns a head's lines in a comparable form: the first
// line as it is, then "Name: value" with canonical names and trimmed
// values, stably sorted by name, less the fields drop names.
func normalizeHead(head []byte, drop func(name string) bool) []string {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	out := []string{lines[0]}
	var fields []string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			fields = append(fields, "?"+l)
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		if drop(name) {
			continue
		}
		if name == "Trailer" {
			value = sortedTokens(value)
		}
		fields = append(fields, name+": "+strings.Trim(value, " \t"))
	}
	slices.SortStableFunc(fields, func(a, b string) int {
		na, _, _ := strings.Cut(a, ":")
		nb, _, _ := strings.Cut(b, ":")
		return strings.Compare(na, nb)
	})
	return append(out, fields...)
}

// sortedTokens canonicalises a list of field names.
func sortedTokens(v string) string {
	var toks []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			toks = append(toks, textproto.CanonicalMIMEHeaderKey(t))
		}
	}
	slices.Sort(toks)
	return strings.Join(toks, ", ")
}

// normalizeRequest is a request as the backend received it, normalised.
func normalizeRequest(raw []byte) string {
	if bytes.HasPrefix(raw, []byte("unparsable: ")) || bytes.HasPrefix(raw, []byte("body error: ")) {
		return fmt.Sprintf("%q", raw)
	}
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := normalizeHead(head, func(string) bool { return false })
	lines = slices.DeleteFunc(lines, func(l string) bool { return l == "Content-Length: 0" })
	return fmt.Sprintf("%q body %q", lines, body)
}

// headTimeout is the text of a response that never came.
const headTimeout = "error reading the head (timeout)\n"

// clientResponse is one response a client read, normalised.
type clientResponse struct {
	text string
	// refused marks the router's own 502 or 504, or a body cut off.
	refused bool
	// routerError marks any answer of the router's own (502, 504, 4xx).
	routerError bool
}

// readClientResponses reads the responses to requests with the given
// methods from conn until EOF, an error, a wait longer than idle or the
// answer to diffEnd.
func readClientResponses(conn net.Conn, methods []string, idle time.Duration) []clientResponse {
	br := bufio.NewReader(conn)
	var out []clientResponse
	for i := 0; ; i++ {
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		for {
			conn.SetReadDeadline(time.Now().Add(idle))
			res, err := readOneResponse(br, method)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					out = append(out, res)
				}
				return out
			}
			out = append(out, res)
			if strings.HasPrefix(res.text, "HTTP/1.1 1") {
				continue // an interim response; the final one follows
			}
			if strings.Contains(res.text, "X-Diff-End: 1") {
				return out
			}
			break
		}
	}
}

// readOneResponse reads and normalises one response. A clean EOF before
// it returns io.EOF and nothing else; any other failure returns a response
// that describes it, with refused set for a body cut off.
func readOneResponse(br *bufio.Reader, method string) (clientResponse, error) {
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		if errors.Is(err, io.EOF) {
			return clientResponse{}, err
		}
		return clientResponse{text: "error reading the head " + errText(err) + "\n"}, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return clientResponse{text: "body cut off " + errText(err) + "\n", refused: !isTimeout(err)}, err
	}
	bodyless := res.StatusCode < 200 || res.StatusCode == 204 || res.StatusCode == 304 || method == "HEAD"
	// The router's own answers: its text, or, to a HEAD (no body to
	// show it), its 502 and 504.
	routerError := res.Header.Get("Content-Type") == "text/plain; charset=utf-8" &&
		(bytes.HasPrefix(body, []byte("lastgood: ")) || res.StatusCode >= 400 && res.StatusCode < 500 && res.Header.Get(RevisionHeader) == "" ||
			method == "HEAD" && (res.StatusCode == 502 || res.StatusCode == 504))
	var b strings.Builder
	if routerError {
		fmt.Fprintf(&b, "HTTP/1.1 %d (reason not compared)\n", res.StatusCode)
	} else {
		fmt.Fprintf(&b, "HTTP/1.1 %s\n", res.Status)
	}
	names := make([]string, 0, len(res.Header))
	for k := range res.Header {
		names = append(names, k)
	}
	// The fields a 1xx's Connection names are hop-by-hop too.
	var named []string
	if res.StatusCode < 200 {
		for _, v := range res.Header["Connection"] {
			for _, tok := range strings.Split(v, ",") {
				named = append(named, textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(tok)))
			}
		}
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case k == "Date":
			continue
		case (k == "Content-Length" || k == "Transfer-Encoding") && !bodyless:
			continue
		case res.StatusCode < 200 && (classify([]byte(k)) != kindPlain || slices.Contains(named, k)):
			continue
		case routerError && k == "Content-Length":
			continue
		}
		for _, v := range res.Header[k] {
			if k == "Trailer" {
				v = sortedTokens(v)
			}
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if res.ContentLength >= 0 && bodyless && !routerError {
		fmt.Fprintf(&b, "(length %d)\n", res.ContentLength)
	}
	if len(res.Trailer) > 0 {
		var tnames []string
		for k, vs := range res.Trailer {
			for _, v := range vs {
				tnames = append(tnames, k+": "+v)
			}
			if len(vs) == 0 {
				tnames = append(tnames, k+" (announced)")
			}
		}
		slices.Sort(tnames)
		fmt.Fprintf(&b, "trailers %q\n", tnames)
	}
	if routerError {
		b.WriteString("(the router's own answer)\n")
	} else {
		fmt.Fprintf(&b, "body %q\n", body)
	}
	refused := routerError && (res.StatusCode == 502 || res.StatusCode == 504)
	return clientResponse{text: b.String(), refused: refused, routerError: routerError}, nil
}

// diffResponses describes how the fast path's responses differ from
// net/http's, allowing the fast path to refuse where net/http relays; ""
// when they do not.
func diffResponses(fast, nethttp []clientResponse) string {
	for i := range max(len(fast), len(nethttp)) {
		switch {
		case i < len(fast) && fast[i].refused:
			return "" // the fast path refused: allowed, and the rest may differ
		case i < len(fast) && i == len(nethttp)-1 && fast[i].routerError &&
			strings.HasPrefix(fast[i].text, "HTTP/1.1 4") && nethttp[i].text == headTimeout:
			// net/http waits for 4 bytes before it reads a next request
			// (server.go's Peek(4)), so it never answers a shorter tail
			// ("\n\r\n"), which cannot be a request; the fast path reads
			// it at once and refuses it: stricter, allowed.
			return ""
		case i >= len(fast) || i >= len(nethttp):
			return fmt.Sprintf("fast path answered %d responses, net/http %d:\nfast path:\n%s\nnet/http:\n%s", len(fast), len(nethttp), dump(fast), dump(nethttp))
		case fast[i].text != nethttp[i].text:
			return fmt.Sprintf("response %d differs:\nfast path:\n%s\nnet/http:\n%s", i, dump(fast), dump(nethttp))
		}
	}
	return ""
}

func dump(rs []clientResponse) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "--- %d (refused %v)\n%s", i, r.refused, r.text)
	}
	return b.String()
}

// exchangeRaw sends raw on a new connection to url and reads the answers,
// for requests with the given methods.
func exchangeRaw(t *testing.T, url string, raw []byte, methods []string, idle time.Duration) []clientResponse {
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go conn.Write(raw) // a reader of the answers must run at the same time
	return readClientResponses(conn, methods, idle)
}

// The waits of a differential run: a short one first and, when the paths
// differ, two runs more with a long one. A difference must show in every
// run: this tells a slow machine from a stalled path, and keeps a race of
// net/http's own (its Transport may hand out an idle connection on which
// the backend has just sent bytes nobody asked for) from failing the
// target.
const (
	diffShortWait = 500 * time.Millisecond
	diffLongWait  = 1500 * time.Millisecond // three runs stay under the fuzzer's 10 s
)

var diffWaits = []time.Duration{diffShortWait, diffLongWait, diffLongWait}

// requestMethods returns the methods of the requests in raw as net/http
// reads them, until it cannot read one.
func requestMethods(raw []byte) []string {
	var out []string
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		out = append(out, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return out
		}
	}
}

// diffRequestAnswer is the request target's backend: a fixed answer per
// request, and the end marker for diffEnd.
func diffRequestAnswer(_ *diffBackend, req *http.Request, _ int) (string, bool) {
	if req.URL.Path == "/__end" {
		return "HTTP/1.1 200 OK\r\nX-Diff-End: 1\r\nContent-Length: 3\r\n\r\nend", false
	}
	body := "ok " + req.Method
	if req.Method == "HEAD" {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", len(body)), false
	}
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
}

// FuzzDiffRequests sends the same client bytes (one or more pipelined
// requests, then diffEnd) through both paths and compares what the backend
// received and what the client got back.
func FuzzDiffRequests(f *testing.F) {
	for _, seed := range diffRequestSeeds {
		f.Add([]byte(seed))
	}
	paths := startDiffPaths(f, diffRequestAnswer)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			return
		}
		input := append(slices.Clip(raw), diffEnd...)
		methods := requestMethods(input)
		in := fmt.Sprintf("input %q", raw)
		var problem string
		for _, wait := range diffWaits {
			got := map[*diffPath][]clientResponse{}
			for _, p := range []*diffPath{paths.fast, paths.net} {
				p.backend.reset()
				got[p] = exchangeRaw(t, p.url, input, methods, wait)
				p.settle()
			}
			problem = diffResponses(got[paths.fast], got[paths.net])
			if problem == "" {
				problem = diffReceived(paths.fast.backend.requests(), paths.net.backend.requests(), endsRefused(got[paths.fast]))
			}
			if problem == "" {
				break
			}
		}
		if problem != "" {
			t.Fatalf("%s\n%s", in, problem)
		}
	})
}

// diffReceived describes how the requests the backend received through
// the fast path differ from those through net/http; refused tells that the
// fast path's answers end with a refusal of its own, after which it may
// have forwarded fewer.
func diffReceived(fast, nethttp [][]byte, refused bool) string {
	n := len(fast)
	if n > len(nethttp) || n < len(nethttp) && !refused {
		return fmt.Sprintf("the backend received %d requests through the fast path, %d through net/http:\nfast path: %q\nnet/http: %q", len(fast), len(nethttp), fast, nethttp)
	}
	for i := range n {
		if a, b := normalizeRequest(fast[i]), normalizeRequest(nethttp[i]); a != b {
			return fmt.Sprintf("request %d reached the backend differently:\nfast path: %s\nnet/http:  %s", i, a, b)
		}
	}
	return ""
}

// endsRefused reports whether the last response is a refusal of the
// router's own.
func endsRefused(rs []clientResponse) bool {
	return len(rs) > 0 && (rs[len(rs)-1].refused || rs[len(rs)-1].routerError)
}

var diffRequestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b=c HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\nCookie: a=1; b=2\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 34\r\n\r\n" + smuggledGET,
	"POST /a HTTP/1.1\r\nHost: a\r\nConnection: Host\r\nContent-Length: 0\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET /%7e;x=1/p@:!$&'()*+,= HTTP/1.1\r\nHost: a:8080\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /?q=%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers, deflate\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTrailer: X\r\n\r\n",
	"DELETE /d HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
}

// FuzzDiffResponses answers the requests of a client (GET /1, then GET or
// HEAD /2, then GET /3, one after the other on one connection) with the
// backend response bytes the input gives (split at "\x00\x00"; the last
// repeats) through both paths, and compares what the client received.
func FuzzDiffResponses(f *testing.F) {
	for _, seed := range diffResponseSeeds {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true) // the second request a HEAD
	}
	var mu sync.Mutex
	var responses []string
	paths := startDiffPaths(f, func(_ *diffBackend, req *http.Request, n int) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		resp := responses[min(n, len(responses)-1)]
		return resp, backendMustClose(resp, req.Method)
	})
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		if len(data) > 64<<10 || len(data) == 0 {
			return
		}
		mu.Lock()
		responses = strings.Split(string(data), "\x00\x00")
		mu.Unlock()
		methods := []string{"GET", "GET", "GET"}
		if head {
			methods[1] = "HEAD"
		}
		var problem string
		for _, wait := range diffWaits {
			got := map[*diffPath][]clientResponse{}
			for _, p := range []*diffPath{paths.fast, paths.net} {
				p.backend.reset()
				got[p] = requestOneByOne(t, p.url, methods, wait)
				p.settle()
			}
			if problem = diffResponses(got[paths.fast], got[paths.net]); problem == "" {
				break
			}
		}
		if problem != "" {
			t.Fatalf("backend responses %q, second request %s\n%s", data, methods[1], problem)
		}
	})
}

// backendMustClose reports whether the backend closes the connection after
// writing resp to a request with method: when net/http could not reuse the
// connection after it (a body that runs to the close, Connection: close,
// an unreadable response, or bytes left over).
func backendMustClose(resp, method string) bool {
	br := bufio.NewReader(strings.NewReader(resp))
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return true
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.Close || res.ContentLength < 0 && res.TransferEncoding == nil && method != "HEAD" && res.StatusCode >= 200 &&
			res.StatusCode != 204 && res.StatusCode != 304 {
			return true
		}
		if res.StatusCode >= 200 || res.StatusCode == 101 {
			return br.Buffered() > 0
		}
	}
}

// requestOneByOne sends one request per method, each after the answer to
// the one before, on one connection (a new one if the router closed it),
// and returns the answers.
func requestOneByOne(t *testing.T, url string, methods []string, wait time.Duration) []clientResponse {
	var out []clientResponse
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i, m := range methods {
		if conn == nil {
			var err error
			if conn, err = net.Dial("tcp", strings.TrimPrefix(url, "http://")); err != nil {
				t.Fatal(err)
			}
			br = bufio.NewReader(conn)
		}
		conn.SetDeadline(time.Now().Add(wait))
		fmt.Fprintf(conn, "%s /%d HTTP/1.1\r\nHost: a\r\n\r\n", m, i+1)
		for {
			res, err := readOneResponse(br, m)
			if err != nil {
				if errors.Is(err, io.EOF) {
					res.text = "connection closed\n"
				}
				out = append(out, res)
				conn.Close()
				conn = nil
				break
			}
			out = append(out, res)
			if !strings.HasPrefix(res.text, "HTTP/1.1 1") {
				break
			}
		}
	}
	return out
}

// errText names an error class without its addresses.
func errText(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "(timeout)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "(eof)"
	}
	return "(connection error)"
}

var diffResponseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Other\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil the close",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\nContent-Type: text/html\r\nETag: \"x\"\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 100 Continue\r\nConnection: keep-alive\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 Fine\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n",
	"hello, I am HTTP/0.9",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\x00\x00HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Type\r\n\r\n0\r\nContent-Type: x\r\n\r\n",
}

// TestDiffHarnessSeesADifference checks the comparison itself: different
// bodies, a missing response and a fast path relaying what net/http
// refused are differences; the fast path refusing what net/http relays is
// not.
func TestDiffHarnessSeesADifference(t *testing.T) {
	ok := clientResponse{text: "HTTP/1.1 200 OK\nbody \"hello\"\n"}
	short := clientResponse{text: "HTTP/1.1 200 OK\nbody \"hell\"\n"}
	refused := clientResponse{text: "HTTP/1.1 502 Bad Gateway\n(the router's own answer)\n", refused: true, routerError: true}
	badRequest := clientResponse{text: "HTTP/1.1 400 (reason not compared)\n(the router's own answer)\n", routerError: true}
	for _, tt := range []struct {
		name      string
		fast, net []clientResponse
		differ    bool
	}{
		{"same", []clientResponse{ok, ok}, []clientResponse{ok, ok}, false},
		{"body", []clientResponse{ok}, []clientResponse{short}, true},
		{"missing", []clientResponse{ok}, []clientResponse{ok, ok}, true},
		{"fast path relays what net/http refused", []clientResponse{ok}, []clientResponse{refused}, true},
		{"fast path refuses what net/http relays", []clientResponse{refused}, []clientResponse{ok, ok}, false},
		{"fast path refuses a tail net/http waits on", []clientResponse{ok, badRequest}, []clientResponse{ok, {text: headTimeout}}, false},
		{"fast path refuses what net/http answers", []clientResponse{ok, badRequest}, []clientResponse{ok, ok}, true},
	} {
		if got := diffResponses(tt.fast, tt.net) != ""; got != tt.differ {
			t.Errorf("%s: differ = %v, want %v", tt.name, got, tt.differ)
		}
	}
	a := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n")
	b := []byte("GET / HTTP/1.1\r\nx-a: 1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	c := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-A: 2\r\n\r\n")
	if d := diffReceived([][]byte{a}, [][]byte{b}, false); d != "" {
		t.Errorf("order, case and an empty Content-Length are normalised, got %s", d)
	}
	if d := diffReceived([][]byte{a}, [][]byte{c}, false); d == "" {
		t.Error("a different value was not seen")
	}
	if d := diffReceived([][]byte{a}, [][]byte{a, a}, false); d == "" {
		t.Error("a missing request was not seen")
	}
}
