package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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

// copyToEOF copies until src ends.
func (r relay) copyToEOF() error {
	for {
		if err := r.flushIfDry(); err != nil {
			return err
		}
		b, err := r.src.Peek(1)
		if len(b) == 0 {
			if err == io.EOF {
				return nil
			}
			return &readError{err}
		}
		if err := r.copyN(int64(r.src.Buffered())); err != nil {
			return err
		}
	}
}

// copyChunked relays a chunked body byte for byte, reading its framing
// (RFC 9112 section 7.1) to find where it ends: each chunk-size line, the
// chunk data and its CRLF, the last chunk, and the trailer section.
func (r relay) copyChunked() error {
	for {
		line, err := r.line()
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			return &readError{errBadChunk}
		}
		if _, err := r.dst.Write(line); err != nil {
			return &writeError{err}
		}
		if size == 0 {
			return r.trailers()
		}
		if err := r.copyN(size); err != nil {
			return err
		}
		crlf, err := r.line()
		if err != nil {
			return err
		}
		if string(crlf) != "\r\n" && string(crlf) != "\n" {
			return &readError{errBadChunk}
		}
		if _, err := r.dst.Write(crlf); err != nil {
			return &writeError{err}
		}
	}
}

// trailers relays the trailer section up to its empty line.
func (r relay) trailers() error {
	for {
		line, err := r.line()
		if err != nil {
			return err
		}
		if _, err := r.dst.Write(line); err != nil {
			return &writeError{err}
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return nil
		}
	}
}

// line reads one framing line, with its line ending, flushing dst first if
// the line is not buffered whole. Lines longer than src's buffer are
// refused.
func (r relay) line() ([]byte, error) {
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
	return line, nil
}

// chunkSize parses a chunk-size line: hex digits, then optionally
// extensions after ';', then the line ending.
func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
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
			if digits == 0 || c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				return 0, false
			}
			return n, true
		}
		if digits++; digits > 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return 0, false
}
