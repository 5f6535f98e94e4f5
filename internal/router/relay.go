package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// readError is a relay's failure to read its source; writeError, to write
// its destination. The fast path tells a failed backend from a departed
// client by them.
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// errBadChunk: a chunked body's framing is broken.
var errBadChunk = errors.New("malformed chunked encoding")

// relay copies bodies from src to dst. It flushes dst whenever reading src
// would block, so a streamed body reaches the client as it is produced.
// Its scratch buffer is taken only for reads that bypass src's buffer.
type relay struct {
	dst     *bufio.Writer
	src     *bufio.Reader
	buffers *bufferPool
}

// flushIfDry flushes dst when src has nothing buffered.
func (r relay) flushIfDry() error {
	if r.src.Buffered() == 0 {
		if err := r.dst.Flush(); err != nil {
			return &writeError{err}
		}
	}
	return nil
}

// copyN copies exactly n bytes.
func (r relay) copyN(n int64) error {
	var scratch []byte
	defer func() {
		if scratch != nil {
			r.buffers.Put(scratch)
		}
	}()
	for n > 0 {
		if err := r.flushIfDry(); err != nil {
			return err
		}
		if buffered := r.src.Buffered(); buffered > 0 {
			b, _ := r.src.Peek(int(min(int64(buffered), n)))
			if _, err := r.dst.Write(b); err != nil {
				return &writeError{err}
			}
			r.src.Discard(len(b))
			n -= int64(len(b))
			continue
		}
		if scratch == nil {
			scratch = r.buffers.Get()
		}
		got, err := r.src.Read(scratch[:min(int64(len(scratch)), n)])
		if got > 0 {
			if _, werr := r.dst.Write(scratch[:got]); werr != nil {
				return &writeError{werr}
			}
			n -= int64(got)
		}
		if err != nil && n > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &readError{err}
		}
	}
	return nil
}

// copyToEOFChunked copies until src ends, sending what it reads as chunks
// and then the last chunk: a close-delimited body reaches the client
// chunked, as net/http's server sends a body of unknown length, so that
// the client's connection survives it.
func (r relay) copyToEOFChunked() error {
	var size [20]byte
	for {
		if err := r.flushIfDry(); err != nil {
			return err
		}
		b, err := r.src.Peek(1)
		if len(b) == 0 {
			if err == io.EOF {
				if _, err := r.dst.WriteString("0\r\n\r\n"); err != nil {
					return &writeError{err}
				}
				return nil
			}
			return &readError{err}
		}
		n := r.src.Buffered()
		r.dst.Write(strconv.AppendInt(size[:0], int64(n), 16))
		r.dst.WriteString("\r\n")
		if err := r.copyN(int64(n)); err != nil {
			return err
		}
		if _, err := r.dst.WriteString("\r\n"); err != nil {
			return &writeError{err}
		}
	}
}

// maxChunkOverhead bounds the framing bytes (chunk-size lines and their
// extensions) that a chunked body may carry beyond 16 bytes per chunk and
// twice its data, as net/http's chunked reader does.
const maxChunkOverhead = 16 << 10

// maxTrailerBytes bounds a chunked body's trailer section.
const maxTrailerBytes = 16 << 10

// copyChunked relays a chunked body (RFC 9112 section 7.1), reading it as
// strictly as net/http's chunked reader does — every framing line ends in
// CRLF with no other CR, a chunk-size is at most 16 hex digits, chunk data
// is followed by CRLF — and writing it in canonical framing: the size in
// lower-case hex, no chunk extensions, the trailer fields as "Name: value"
// lines. A trailer field forbidden in trailers (RFC 9110 section 6.5.1,
// as net/http lists them) ends the relay with an error.
func (r relay) copyChunked() error {
	var excess int64
	var hex [20]byte
	for {
		line, err := r.chunkLine()
		if err != nil {
			return err
		}
		excess += int64(len(line)) + 2
		size, ok := chunkSize(line)
		if !ok {
			return &readError{errBadChunk}
		}
		if excess = max(excess-16-2*size, 0); excess > maxChunkOverhead {
			return &readError{fmt.Errorf("%w: too much non-data", errBadChunk)}
		}
		r.dst.Write(strconv.AppendInt(hex[:0], size, 16))
		if _, err := r.dst.WriteString("\r\n"); err != nil {
			return &writeError{err}
		}
		if size == 0 {
			return r.trailers()
		}
		if err := r.copyN(size); err != nil {
			return err
		}
		crlf, err := r.peek(2)
		if err != nil {
			return err
		}
		if string(crlf) != "\r\n" {
			return &readError{errBadChunk}
		}
		r.src.Discard(2)
		if _, err := r.dst.WriteString("\r\n"); err != nil {
			return &writeError{err}
		}
	}
}

// trailers relays the trailer section up to its empty line.
func (r relay) trailers() error {
	total := 0
	for {
		line, err := r.chunkLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			_, err := r.dst.WriteString("\r\n")
			if err != nil {
				return &writeError{err}
			}
			return nil
		}
		if total += len(line) + 2; total > maxTrailerBytes {
			return &readError{fmt.Errorf("%w: trailer section too large", errBadChunk)}
		}
		f, err := parseField(line)
		if err != nil || forbiddenTrailer(f.name) {
			return &readError{fmt.Errorf("%w: trailer field %.40q", errBadChunk, line)}
		}
		r.dst.Write(f.name)
		r.dst.WriteString(": ")
		r.dst.Write(f.value)
		if _, err := r.dst.WriteString("\r\n"); err != nil {
			return &writeError{err}
		}
	}
}

// chunkLine reads one framing line and returns it without its CRLF,
// flushing dst first if the line is not buffered whole. A line without
// CRLF, with a CR before its end, or longer than src's buffer is a
// readError.
func (r relay) chunkLine() ([]byte, error) {
	buffered, _ := r.src.Peek(r.src.Buffered())
	if bytes.IndexByte(buffered, '\n') < 0 {
		if err := r.dst.Flush(); err != nil {
			return nil, &writeError{err}
		}
	}
	line, err := r.src.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &readError{err}
	}
	if cr := bytes.IndexByte(line, '\r'); cr < 0 || cr != len(line)-2 {
		return nil, &readError{fmt.Errorf("%w: line not ended by CRLF", errBadChunk)}
	}
	return line[:len(line)-2], nil
}

// peek returns the next n bytes of src, flushing dst first if they are
// not buffered.
func (r relay) peek(n int) ([]byte, error) {
	if r.src.Buffered() < n {
		if err := r.dst.Flush(); err != nil {
			return nil, &writeError{err}
		}
	}
	b, err := r.src.Peek(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &readError{err}
	}
	return b, nil
}

// chunkSize parses a chunk-size line (without its CRLF) as net/http does:
// trailing spaces and tabs are ignored, then anything from ';' on (the
// extensions), and what is left must be 1 to 16 hex digits. Sizes of 2^60
// and more, which no body here reaches, are refused.
func chunkSize(line []byte) (int64, bool) {
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if semi := bytes.IndexByte(line, ';'); semi >= 0 {
		line = line[:semi]
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if n >= 1<<56 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// forbiddenTrailer reports whether a field may not be sent in trailers:
// the framing, routing, authentication and caching fields that net/http's
// server refuses to send as trailers (If-* included).
func forbiddenTrailer(name []byte) bool {
	if len(name) >= 3 && equalFold(name[:3], "if-") {
		return true
	}
	for _, bad := range forbiddenTrailers {
		if equalFold(name, bad) {
			return true
		}
	}
	return false
}

var forbiddenTrailers = []string{
	"authorization", "cache-control", "connection", "content-encoding", "content-length",
	"content-range", "content-type", "expect", "host", "keep-alive", "max-forwards", "pragma",
	"proxy-authenticate", "proxy-authorization", "proxy-connection", "range", "realm", "te",
	"trailer", "transfer-encoding", "www-authenticate",
}
