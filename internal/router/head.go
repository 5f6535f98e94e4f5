package router

import (
	"bufio"
	"errors"
)

// Errors of the fast path's head reader and parsers.
var (
	// errMalformed: the head breaks HTTP/1.1's grammar (answered 400, or
	// 502 for a backend's response).
	errMalformed = errors.New("malformed HTTP head")
	// errHeadTooLarge: the head exceeds maxHeadBytes (answered 431).
	errHeadTooLarge = errors.New("HTTP head too large")
	// errNotSimple: a request that the fast path leaves to net/http
	// (HTTP/1.0, HTTP/2's preface, upgrades, Expect, chunked uploads,
	// Connection naming fields, targets net/http would re-encode, ...):
	// net/http is the reference for everything unusual.
	errNotSimple = errors.New("request needs net/http")
)

// maxHeadBytes bounds a request or response head, as net/http's
// DefaultMaxHeaderBytes does.
const maxHeadBytes = 1 << 20

// field is one header line of a head, as slices of the head's bytes.
type field struct {
	name, value []byte
	kind        fieldKind
}

// fieldKind is what the fast path makes of a header field.
type fieldKind uint8

const (
	kindPlain fieldKind = iota // forwarded as it is
	kindDrop                   // hop-by-hop or replaced by the router
	kindHost
	kindCookie
	kindContentLength
	kindTransferEncoding
	kindConnection
	kindTE
	kindUpgrade
	kindExpect
	kindTrailer // a response's Trailer field
)

// readHead appends to buf the lines of one HTTP head, up to and including
// the empty line that ends it, and returns the grown buf. A head that starts
// with an empty line returns errNotSimple (net/http decides what it means).
func readHead(br *bufio.Reader, buf []byte) ([]byte, error) {
	lineStart := len(buf)
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if len(buf)+len(line) > maxHeadBytes {
			return buf, errHeadTooLarge
		}
		buf = append(buf, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, err
		}
		whole := buf[lineStart:]
		if len(whole) == 1 || len(whole) == 2 && whole[0] == '\r' {
			if first {
				return buf, errNotSimple
			}
			return buf, nil
		}
		first = false
		lineStart = len(buf)
	}
}

// nextLine returns the first line of b without its line ending, and the
// rest after it. ok is false when b has no complete line.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	for i, c := range b {
		if c == '\n' {
			line = b[:i]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, b[i+1:], true
		}
	}
	return nil, nil, false
}

// parseField splits a header line into a field, checking its name is a
// token and its value has no control characters. An obsolete line folding
// returns errNotSimple.
func parseField(line []byte) (field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return field{}, errNotSimple
	}
	colon := -1
	for i, c := range line {
		if c == ':' {
			colon = i
			break
		}
		if !isTokenChar(c) {
			return field{}, errMalformed
		}
	}
	if colon <= 0 {
		return field{}, errMalformed
	}
	value := trimSpace(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return field{}, errMalformed
		}
	}
	return field{name: line[:colon], value: value}, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110
// section 5.6.2): a method or a field name.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold reports whether b equals the lower-case ASCII string lower,
// ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// classify returns the kind of a field by its name. Hop-by-hop fields
// (RFC 9110 section 7.6.1, and those net/http's ReverseProxy removes) and
// the forwarding fields the router sets itself are kindDrop.
func classify(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return kindTE
		}
	case 4:
		if equalFold(name, "host") {
			return kindHost
		}
	case 6:
		if equalFold(name, "cookie") {
			return kindCookie
		}
		if equalFold(name, "expect") {
			return kindExpect
		}
	case 7:
		if equalFold(name, "upgrade") {
			return kindUpgrade
		}
		if equalFold(name, "trailer") {
			return kindDrop
		}
	case 9:
		if equalFold(name, "forwarded") {
			return kindDrop
		}
	case 10:
		if equalFold(name, "connection") {
			return kindConnection
		}
		if equalFold(name, "keep-alive") {
			return kindDrop
		}
	case 14:
		if equalFold(name, "content-length") {
			return kindContentLength
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return kindDrop
		}
	case 16:
		if equalFold(name, "x-forwarded-host") || equalFold(name, "proxy-connection") {
			return kindDrop
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return kindTransferEncoding
		}
		if equalFold(name, "x-forwarded-proto") || equalFold(name, "lastgood-revision") {
			return kindDrop
		}
	case 18:
		if equalFold(name, "proxy-authenticate") {
			return kindDrop
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			return kindDrop
		}
	}
	return kindPlain
}

// connectionTokens calls fn with each comma-separated token of a
// Connection (or TE) field value.
func connectionTokens(value []byte, fn func(token []byte)) {
	for len(value) > 0 {
		i := 0
		for i < len(value) && value[i] != ',' {
			i++
		}
		if tok := trimSpace(value[:i]); len(tok) > 0 {
			fn(tok)
		}
		if i == len(value) {
			return
		}
		value = value[i+1:]
	}
}

// parseLength parses a Content-Length value: decimal digits only, no more
// than 18 of them.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// namedIn reports whether name is one of the tokens (ignoring case).
func namedIn(name []byte, tokens [][]byte) bool {
	for _, t := range tokens {
		if len(t) == len(name) && equalFoldBytes(t, name) {
			return true
		}
	}
	return false
}

func equalFoldBytes(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
