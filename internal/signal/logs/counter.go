// Package logs counts the lines of a log file that match a regular
// expression, following the file across rotation and truncation. It is the
// logs signal of lastgood's analysis: a check such as
// `logs: {match: "panic|FATAL", max: 0}` compares Count.Matches of a
// revision's replica logs with its bound.
//
// A Counter reads only what is appended after it is created (unless
// FromStart is given), keeps its place between polls with an open file, and
// uses bounded memory however long the lines are.
package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sync"
	"syscall"
)

// ErrNotFile means the path names a directory, not a log file.
var ErrNotFile = errors.New("is a directory")

// readBuf is the size of the read buffer of a Counter.
const readBuf = 32 << 10

// Count is what a Counter has seen since it was created.
type Count struct {
	// Lines is the number of complete (newline-terminated) lines read.
	Lines int64
	// Matches is how many of them matched the expression.
	Matches int64
	// Last holds the last matching lines, oldest first: at most 5, each cut
	// to at most 512 bytes (at a UTF-8 boundary), without the newline.
	Last []string
	// Rotations is how many times the file at the path was found replaced
	// (rotated, or removed and created again).
	Rotations int64
	// Truncations is how many times the file was found shorter than what
	// had been read of it; reading then restarts at its beginning.
	Truncations int64
}

// Option changes how a Counter starts.
type Option func(*Counter)

// FromStart makes a Counter read the file from its beginning instead of
// from its size at creation.
func FromStart() Option { return func(c *Counter) { c.fromStart = true } }

// Counter counts matching lines of one log file. Create it with NewCounter;
// call Poll as often as wanted and Close when done. Its methods may be
// called from several goroutines.
type Counter struct {
	path      string
	fromStart bool

	mu          sync.Mutex
	f           *os.File // the file being read; nil until one exists
	id          fileID
	off         int64 // bytes of f read
	buf         []byte
	lines       lineCounter
	rotations   int64
	truncations int64
}

// NewCounter starts counting the lines of path that match re. When path
// exists, the counter starts at its current size, so lines written before
// (and the rest of a line being written) are not counted; with FromStart it
// starts at 0. When path does not exist yet, Poll returns a zero Count until
// it appears and then reads it from the beginning.
func NewCounter(path string, re *regexp.Regexp, opts ...Option) *Counter {
	c := &Counter{path: path, lines: lineCounter{re: re}}
	for _, o := range opts {
		o(c)
	}
	f, id, size, err := openFile(path)
	if err != nil {
		return c // tried again by Poll, which reports the error
	}
	c.f, c.id = f, id
	if !c.fromStart && size > 0 {
		c.off = size
		var b [1]byte
		if _, err := f.ReadAt(b[:], size-1); err == nil && b[0] != '\n' {
			c.lines.skip = true // the line in progress began before us
		}
	}
	return c
}

// Poll reads what was written since the last Poll and returns the totals.
// A missing file is not an error: the Count stays as it was.
func (c *Counter) Poll() (Count, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.follow(); err != nil {
		return c.count(), fmt.Errorf("count lines of %s: %w", c.path, err)
	}
	return c.count(), nil
}

// Close releases the open file. Poll after Close opens the path again and
// reads it from the beginning.
func (c *Counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f, c.id, c.off = nil, fileID{}, 0
	if err != nil {
		return fmt.Errorf("close %s: %w", c.path, err)
	}
	return nil
}

func (c *Counter) count() Count {
	return Count{
		Lines:       c.lines.lines,
		Matches:     c.lines.matches,
		Last:        c.lines.lastMatches(),
		Rotations:   c.rotations,
		Truncations: c.truncations,
	}
}

// fileID identifies a file whatever its name.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}
}

// openFile opens path for reading and returns its identity and size.
func openFile(path string) (*os.File, fileID, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, 0, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = ErrNotFile
	}
	if err != nil {
		f.Close()
		return nil, fileID{}, 0, err
	}
	return f, idOf(fi), fi.Size(), nil
}

// notExist reports whether err means the path is (for now) absent.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
