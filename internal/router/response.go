package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// errRefused: a response the fast path does not relay, because its framing
// is unusual enough that relaying it could differ from what net/http would
// do (RFC 9112 section 11.2: a proxy that cannot be sure where a message
// ends must not forward it). The client gets 502 and the backend
// connection is closed.
var errRefused = errors.New("response framing the router refuses")

func refused(why string) error { return fmt.Errorf("%w: %s", errRefused, why) }

// responseHead is a parsed response head from a backend. Its slices point
// into the head's bytes.
type responseHead struct {
	status        int
	fields        []field
	contentLength int64 // -1 when absent
	lengthValue   []byte
	chunked       bool
	close         bool // the backend closes the connection after it
	http10        bool
	// named are the fields the Connection field names, which are not
	// relayed — unless it also says close on HTTP/1.1: net/http then
	// drops the Connection field before ReverseProxy reads it, and relays
	// them, so the fast path does too (keepNamed).
	named     [][]byte
	keepNamed bool
}

// parseResponseHead parses a complete response head into h, reusing h's
// storage. A head that breaks the grammar is errMalformed; one whose
// framing is unusual is errRefused.
//
// The framing rule for responses: the fast path relays only HTTP/1.1 and
// HTTP/1.0 responses with at most one Content-Length value (repeated
// fields must agree) or, on HTTP/1.1, exactly one Transfer-Encoding:
// chunked and no Content-Length, whose Connection field names no framing
// field, and, for statuses that have no body (1xx, 204), no framing
// announcing one. Everything else is refused.
func parseResponseHead(head []byte, h *responseHead) error {
	*h = responseHead{fields: h.fields[:0], named: h.named[:0], contentLength: -1}
	line, rest, ok := nextLine(head)
	if !ok {
		return errMalformed
	}
	if len(line) < len("HTTP/1.1 200") || string(line[:5]) != "HTTP/" {
		return fmt.Errorf("%w: no HTTP/1.x status line (an HTTP/0.9 backend?): %.40q", errMalformed, line)
	}
	switch string(line[:9]) {
	case "HTTP/1.1 ":
	case "HTTP/1.0 ":
		h.http10 = true
		h.close = true // keep-alive of HTTP/1.0 is not worth the trouble
	default:
		return fmt.Errorf("%w: status line %.40q", errMalformed, line)
	}
	text := line[9:]
	if len(text) > 3 && text[3] != ' ' {
		return fmt.Errorf("%w: status line %.40q", errMalformed, line)
	}
	for _, c := range text[:3] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: status line %.40q", errMalformed, line)
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return fmt.Errorf("%w: status %d", errMalformed, h.status)
	}
	for _, c := range text {
		if c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%w: control character in the status line", errMalformed)
		}
	}
	lengths := 0
	for {
		line, rest, ok = nextLine(rest)
		if !ok {
			return errMalformed
		}
		if len(line) == 0 {
			break
		}
		f, err := parseField(line)
		if err != nil {
			return fmt.Errorf("%w: header line %.40q", errMalformed, line)
		}
		if err := h.note(&f); err != nil {
			return err
		}
		if f.kind == kindContentLength {
			if lengths++; lengths > 1 {
				f.kind = kindDrop // the same value again: send it once, as net/http does
			}
		}
		h.fields = append(h.fields, f)
	}
	if len(rest) != 0 {
		return errMalformed
	}
	switch {
	case h.chunked && h.http10:
		// net/http ignores Transfer-Encoding on HTTP/1.0 and reads the
		// body to the close: the chunk framing is part of the body.
		return refused("HTTP/1.0 response with Transfer-Encoding")
	case h.chunked && h.contentLength >= 0:
		return refused("both Content-Length and Transfer-Encoding")
	case (h.status < 200 || h.status == 204) && (h.chunked || h.contentLength > 0):
		return refused(fmt.Sprintf("status %d announces a body", h.status))
	case h.status == 304 && h.chunked:
		return refused("status 304 with Transfer-Encoding")
	}
	for _, tok := range h.named {
		switch {
		case equalFold(tok, "content-length"), equalFold(tok, "transfer-encoding"), equalFold(tok, "trailer"):
			return refused(fmt.Sprintf("Connection names %s", tok))
		}
	}
	if h.chunked {
		for _, f := range h.fields {
			if f.kind != kindTrailer {
				continue
			}
			var bad []byte
			connectionTokens(f.value, func(tok []byte) {
				if bad == nil && forbiddenTrailer(tok) {
					bad = tok
				}
			})
			if bad != nil {
				return refused(fmt.Sprintf("Trailer announces %s", bad))
			}
		}
	}
	return nil
}

// note classifies f and records what it says about the response's framing.
func (h *responseHead) note(f *field) error {
	f.kind = classify(f.name)
	switch f.kind {
	case kindContentLength:
		n, ok := parseLength(f.value)
		if !ok {
			return fmt.Errorf("%w: Content-Length %.20q", errMalformed, f.value)
		}
		// Repeated fields must repeat the value as written, as net/http
		// checks ("2" and "02" conflict).
		if h.contentLength >= 0 && !bytes.Equal(f.value, h.lengthValue) {
			return refused("conflicting Content-Length values")
		}
		h.contentLength, h.lengthValue = n, f.value
	case kindTransferEncoding:
		if !equalFold(f.value, "chunked") || h.chunked {
			return refused(fmt.Sprintf("Transfer-Encoding %.20q", f.value))
		}
		h.chunked = true
		f.kind = kindDrop
	case kindConnection:
		connectionTokens(f.value, func(tok []byte) {
			switch {
			case equalFold(tok, "close"):
				h.close = true
				h.keepNamed = !h.http10
			case equalFold(tok, "keep-alive"):
			default:
				h.named = append(h.named, tok)
			}
		})
		f.kind = kindDrop
	case kindTE, kindUpgrade:
		f.kind = kindDrop
	}
	if f.kind == kindDrop && equalFold(f.name, "trailer") {
		f.kind = kindTrailer // relayed only with a chunked body
	}
	return nil
}

// bodyless reports whether the response has no body whatever its fields
// say: informational, 204, 304, or the answer to HEAD.
func (h *responseHead) bodyless(method []byte) bool {
	return h.status < 200 || h.status == 204 || h.status == 304 || string(method) == "HEAD"
}

// closeDelimited reports whether the body runs until the backend closes.
func (h *responseHead) closeDelimited(method []byte) bool {
	return !h.bodyless(method) && !h.chunked && h.contentLength < 0
}

// reframed reports whether the body is sent to the client chunked: a
// chunked body is re-framed (chunk extensions dropped, trailers checked),
// and a close-delimited one is sent chunked so that the client's
// connection survives it, as net/http's server does.
func (h *responseHead) reframed(method []byte) bool {
	return !h.bodyless(method) && h.contentLength < 0
}

// writeRelayed writes the head to send to the client: the status line as
// net/http writes it, the backend's fields less hop-by-hop ones and its
// own Lastgood-Revision, then the router's. Like net/http's server, it
// leaves out the framing fields of responses without a body (and the
// Content-Type of a 304), and a HEAD response keeps its Content-Length but
// not its Transfer-Encoding.
func (h *responseHead) writeRelayed(w *bufio.Writer, method []byte, revision, setCookie string, closing bool) {
	writeStatusLine(w, h.status)
	final := h.status >= 200
	chunked := final && h.reframed(method)
	noBody := !final || h.status == 204 || h.status == 304
	for _, f := range h.fields {
		switch {
		case f.kind == kindDrop, len(h.named) > 0 && !h.keepNamed && namedIn(f.name, h.named):
			continue
		case f.kind == kindContentLength && noBody, f.kind == kindTrailer:
			continue
		case h.status == 304 && equalFold(f.name, "content-type"):
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if h.chunked {
		h.writeTrailerField(w)
	}
	if final {
		w.WriteString(RevisionHeader + ": ")
		w.WriteString(revision)
		w.WriteString("\r\n")
		if setCookie != "" {
			w.WriteString("Set-Cookie: ")
			w.WriteString(setCookie)
			w.WriteString("\r\n")
		}
	}
	if chunked {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

// writeTrailerField announces the trailers of a chunked response as
// net/http does: one Trailer field with the names of every Trailer field,
// canonical and once each, and none if they name nothing.
func (h *responseHead) writeTrailerField(w *bufio.Writer) {
	var names []string
	for _, f := range h.fields {
		if f.kind != kindTrailer {
			continue
		}
		connectionTokens(f.value, func(tok []byte) {
			name := textproto.CanonicalMIMEHeaderKey(string(tok))
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		})
	}
	if len(names) > 0 {
		w.WriteString("Trailer: ")
		w.WriteString(strings.Join(names, ", "))
		w.WriteString("\r\n")
	}
}

// writeStatusLine writes "HTTP/1.1 <code> <text>" as net/http's server
// does: the reason phrase is the standard one, not the backend's.
func writeStatusLine(w *bufio.Writer, code int) {
	if code >= 100 && code < 600 {
		if line := statusLines[code-100]; line != "" {
			w.WriteString(line)
			return
		}
	}
	w.WriteString("HTTP/1.1 ")
	var scratch [8]byte
	w.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
	w.WriteString(" status code ")
	w.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
	w.WriteString("\r\n")
}

// statusLines holds the status line of every code from 100 to 599 that
// has a standard reason phrase.
var statusLines = func() (lines [500]string) {
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			lines[code-100] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return lines
}()
