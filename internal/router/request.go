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
	contentLength        int64    // 0 when absent
	close                bool     // Connection: close
	trailers             bool     // TE: trailers
	named                [][]byte // other field names listed in Connection
}

// parseRequestHead parses a complete request head (as readHead returns
// it) into h, reusing h's storage. It returns errMalformed for what must be
// answered 400 and errNotSimple for what the fast path leaves to net/http.
func parseRequestHead(head []byte, h *requestHead) error {
	*h = requestHead{fields: h.fields[:0], named: h.named[:0]}
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
		case kindContentLength:
			lengths++
			n, ok := parseLength(f.value)
			if !ok {
				return errMalformed
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
	if string(rest[sp+1:]) != "HTTP/1.1" || h.target[0] != '/' {
		return errNotSimple // other versions, absolute-form, CONNECT, OPTIONS *
	}
	return nil
}

// connection notes the tokens of a Connection field.
func (h *requestHead) connection(value []byte) error {
	var err error
	connectionTokens(value, func(tok []byte) {
		switch {
		case equalFold(tok, "close"):
			h.close = true
		case equalFold(tok, "keep-alive"):
		case equalFold(tok, "upgrade"):
			err = errNotSimple
		default:
			h.named = append(h.named, tok)
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
		if f.kind == kindDrop || len(h.named) > 0 && namedIn(f.name, h.named) {
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
