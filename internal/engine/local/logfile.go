package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

const (
	defaultLogLimit = 10 << 20
	// maxLine is the longest line kept whole; a longer one is written in
	// pieces of this size (which a rotation may separate).
	maxLine = 64 << 10
	// tailLines and tailLineMax bound the lines remembered for the exited
	// event.
	tailLines   = 20
	tailLineMax = 1 << 10
)

// logFile is a replica's log: at most limit bytes in the file (unless a
// single line is longer) and one rotated backup at path + ".1". Lines are
// never split by a rotation. It remembers the last tailLines lines.
type logFile struct {
	path  string
	limit int64

	mu   sync.Mutex
	f    *os.File
	size int64
	tail [][]byte // ring of the last lines, oldest at next
	next int
}

func openLog(path string, limit int64) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log: %w", err)
	}
	return &logFile{path: path, limit: limit, f: f, size: fi.Size()}, nil
}

// writeLine appends one line (or one piece of an overlong line), rotating
// first when the line would not fit.
func (l *logFile) writeLine(line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size > 0 && l.size+int64(len(line)) > l.limit {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	l.remember(line)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate moves the file to .1, replacing the previous backup, and starts an
// empty file. The log path never disappears, so a reader that opens it
// during a rotation finds either the old or the new file: the old file is
// hard-linked to .1 and an empty file is renamed over the path. When a step
// fails the current file stays open and keeps growing.
func (l *logFile) rotate() error {
	backup, fresh := l.path+".1", l.path+".new"
	os.Remove(backup + ".new")
	if err := os.Link(l.path, backup+".new"); err == nil {
		if err := os.Rename(backup+".new", backup); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
	} else if err := os.Rename(l.path, backup); err != nil { // no hard links here
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(fresh, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create log after rotation: %w", err)
	}
	if err := os.Rename(fresh, l.path); err != nil {
		f.Close()
		return fmt.Errorf("replace log after rotation: %w", err)
	}
	old := l.f
	l.f, l.size = f, 0
	if err := old.Close(); err != nil {
		return fmt.Errorf("close rotated log: %w", err)
	}
	return nil
}

func (l *logFile) remember(line []byte) {
	if len(line) > tailLineMax {
		line = line[:tailLineMax]
	}
	kept := append([]byte(nil), line...)
	if len(l.tail) < tailLines {
		l.tail = append(l.tail, kept)
		return
	}
	l.tail[l.next] = kept
	l.next = (l.next + 1) % tailLines
}

// lastLines returns the remembered lines, oldest first, without newlines.
func (l *logFile) lastLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.tail))
	for i := range l.tail {
		line := l.tail[(l.next+i)%len(l.tail)]
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		out = append(out, string(line))
	}
	return out
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// copyLines copies r into l line by line until r ends. A last line without a
// newline gets one, so the next process's output starts on a fresh line.
func copyLines(r io.Reader, l *logFile) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if errors.Is(err, io.EOF) && line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			if werr := l.writeLine(line); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed):
			return nil
		default:
			return fmt.Errorf("read replica output: %w", err)
		}
	}
}
