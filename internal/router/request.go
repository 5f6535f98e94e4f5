package router

import (
	"bufio"
	"bytes"
)

// requestHead is a parsed HTTP/1.1 request head. Its slices point into the
// head's bytes, so it is valid until the connection reads the next request.
type requestHead struct {
	method, target, host []byte
	fields               []field
	contentLength        int64 // 0 when absent
	close                bool  // Connection: close
	trailers             bool  // TE: trailers
}

// parseRequestHead parses a complete request head (as readHead returns
// it) into h, reusing h's storage. It returns errMalformed for what must be
// answered 400 and errNotSimple for what the fast path leaves to net/http.
//
// The framing rule: the fast path forwards only requests whose framing is
// plain — one Host, at most one Content-Length in canonical form, no
// Transfer-Encoding, and a Connection field that names nothing but close
// or keep-alive — and whose target and Host net/http would forward
// unchanged. Everything else is net/http's, so hop-by-hop handling can
// never remove framing or Host here.
func parseRequestHead(head []byte, h *requestHead) error {
	*h = requestHead{fields: h.fields[:0]}
	line, rest, ok := nextLine(head)
	if !ok || len(line) == 0 {
		return errMalformed
	}
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	hosts, lengths := 0, 0
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
			return err
		}
		f.kind = classify(f.name)
		switch f.kind {
		case kindHost:
			hosts++
			h.host = f.value
			if !plainHost(f.value) {
				return errNotSimple // net/http answers 400, or forwards it
			}
		case kindContentLength:
			lengths++
			n, ok := parseLength(f.value)
			if !ok {
				return errMalformed
			}
			if len(f.value) > 1 && f.value[0] == '0' {
				return errNotSimple // net/http forwards it as it reads it
			}
			h.contentLength = n
		case kindTransferEncoding, kindUpgrade, kindExpect:
			return errNotSimple
		case kindConnection:
			if err := h.connection(f.value); err != nil {
				return err
			}
			f.kind = kindDrop
		case kindTE:
			connectionTokens(f.value, func(tok []byte) {
				h.trailers = h.trailers || equalFold(tok, "trailers")
			})
			f.kind = kindDrop
		}
		h.fields = append(h.fields, f)
	}
	if len(rest) != 0 {
		return errMalformed
	}
	if hosts != 1 || lengths > 1 {
		return errNotSimple // net/http answers these as it always has
	}
	return nil
}

// parseRequestLine parses "METHOD /target HTTP/1.1".
func (h *requestHead) parseRequestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errMalformed
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !isTokenChar(c) {
			return errMalformed
		}
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errMalformed
	}
	h.target = rest[:sp]
	for _, c := range h.target {
		if c <= ' ' || c == 0x7f {
			return errMalformed
		}
	}
	if string(rest[sp+1:]) != "HTTP/1.1" || h.target[0] != '/' || string(h.method) == "CONNECT" {
		return errNotSimple // other versions, absolute-form, CONNECT, OPTIONS *
	}
	if !plainTarget(h.target) {
		return errNotSimple // net/http's url parsing would re-encode it
	}
	return nil
}

// plainTarget reports whether an origin-form target is one that net/http
// forwards byte for byte: a path of RFC 3986 pchars and '/', with valid
// percent-escapes, then optionally '?' and a query of printable ASCII
// other than '#' and ';' (which httputil.ReverseProxy re-encodes). Others
// go to net/http, which is their reference.
func plainTarget(t []byte) bool {
	query := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		case c == '?':
			query = true
		case query:
			if c <= ' ' || c >= 0x7f || c == '#' || c == ';' {
				return false
			}
		case !isPathChar(c):
			return false
		}
	}
	return true
}

// isPathChar reports whether c may appear unescaped in a path: an RFC 3986
// pchar (unreserved, sub-delims, ':' and '@'), or '/'.
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// plainHost reports whether a Host value is a plain name or address with
// an optional port: letters, digits, '.', '-', '_', ':', '[' and ']'.
// Others go to net/http, which validates them.
func plainHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// connection notes the tokens of a Connection field. A token other than
// close and keep-alive names a header to drop: such a request is
// net/http's, whose ReverseProxy drops it without touching the framing,
// Host or the forwarding headers it sets.
func (h *requestHead) connection(value []byte) error {
	var err error
	connectionTokens(value, func(tok []byte) {
		switch {
		case equalFold(tok, "close"):
			h.close = true
		case equalFold(tok, "keep-alive"):
		default:
			err = errNotSimple
		}
	})
	return err
}

// revision returns the revision in the affinity cookie called name.
func (h *requestHead) revision(name string) (int, bool) {
	for _, f := range h.fields {
		if f.kind != kindCookie {
			continue
		}
		if rev, ok, found := cookieLineRevision(f.value, name); found {
			return rev, ok
		}
	}
	return 0, false
}

// writeForwarded writes the head to send to a backend: hop-by-hop fields
// and any forwarding fields the client sent are dropped, and
// X-Forwarded-For, -Host and -Proto describe the client, as the net/http
// path's ProxyRequest.SetXForwarded does. The Host field is kept.
func (h *requestHead) writeForwarded(w *bufio.Writer, clientIP string) {
	w.Write(h.method)
	w.WriteByte(' ')
	w.Write(h.target)
	w.WriteString(" HTTP/1.1\r\n")
	for _, f := range h.fields {
		if f.kind == kindDrop {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if h.trailers {
		w.WriteString("Te: trailers\r\n")
	}
	if clientIP != "" {
		w.WriteString("X-Forwarded-For: ")
		w.WriteString(clientIP)
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-Host: ")
	w.Write(h.host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
}

// replayable reports whether the request may be sent again after a reused
// backend connection failed before answering: it has no body and its
// method is safe (as net/http's Transport decides).
func (h *requestHead) replayable() bool {
	if h.contentLength != 0 {
		return false
	}
	switch string(h.method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
