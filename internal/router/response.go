package router

import "bufio"

// responseHead is a parsed response head from a backend. Its slices point
// into the head's bytes.
type responseHead struct {
	status        int
	statusText    []byte // "200 OK": the status line after the version
	fields        []field
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool // the backend closes the connection after it
	named         [][]byte
}

// parseResponseHead parses a complete response head into h, reusing h's
// storage. Anything the fast path cannot relay exactly is errMalformed.
func parseResponseHead(head []byte, h *responseHead) error {
	*h = responseHead{fields: h.fields[:0], named: h.named[:0], contentLength: -1}
	line, rest, ok := nextLine(head)
	if !ok || len(line) < len("HTTP/1.1 200") {
		return errMalformed
	}
	switch string(line[:9]) {
	case "HTTP/1.1 ":
	case "HTTP/1.0 ":
		h.close = true // keep-alive of HTTP/1.0 is not worth the trouble
	default:
		return errMalformed
	}
	h.statusText = line[9:]
	code := h.statusText[:3]
	if len(h.statusText) > 3 && h.statusText[3] != ' ' {
		return errMalformed
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return errMalformed
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return errMalformed
	}
	for _, c := range h.statusText {
		if c < ' ' && c != '\t' || c == 0x7f {
			return errMalformed
		}
	}
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
			return errMalformed
		}
		if err := h.note(&f); err != nil {
			return err
		}
		h.fields = append(h.fields, f)
	}
	if len(rest) != 0 {
		return errMalformed
	}
	return nil
}

// note classifies f and records what it says about the response's framing.
func (h *responseHead) note(f *field) error {
	f.kind = classify(f.name)
	switch f.kind {
	case kindContentLength:
		n, ok := parseLength(f.value)
		if !ok || h.contentLength >= 0 && n != h.contentLength {
			return errMalformed
		}
		h.contentLength = n
	case kindTransferEncoding:
		if !equalFold(f.value, "chunked") || h.chunked {
			return errMalformed
		}
		h.chunked = true
		f.kind = kindDrop
	case kindConnection:
		connectionTokens(f.value, func(tok []byte) {
			switch {
			case equalFold(tok, "close"):
				h.close = true
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
		f.kind = kindPlain // the chunked body is relayed with its trailers
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

// writeRelayed writes the head to send to the client: the backend's fields
// less hop-by-hop ones and its own Lastgood-Revision, then the router's.
func (h *responseHead) writeRelayed(w *bufio.Writer, revision, setCookie string, closing bool) {
	w.WriteString("HTTP/1.1 ")
	w.Write(h.statusText)
	w.WriteString("\r\n")
	for _, f := range h.fields {
		if f.kind == kindDrop || f.kind == kindContentLength && h.chunked ||
			len(h.named) > 0 && namedIn(f.name, h.named) {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if h.status >= 200 {
		w.WriteString(RevisionHeader + ": ")
		w.WriteString(revision)
		w.WriteString("\r\n")
		if setCookie != "" {
			w.WriteString("Set-Cookie: ")
			w.WriteString(setCookie)
			w.WriteString("\r\n")
		}
	}
	if h.chunked {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}
