package incident

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/lastgood/lastgood/internal/redact"
)

// Bounds of the log tails in a bundle.
const (
	maxLogLines    = 100
	maxLogBytes    = 64 << 10 // read from the end of each file
	maxLineBytes   = 2 << 10
	maxLogFiles    = 16
	rotatedSuffix  = ".1" // the engine's one rotated backup
	truncatedMark  = " …[truncated]"
	maxFileReadErr = 200
)

// tail returns the last maxLogLines lines of the log at path, redacted,
// reading the rotated backup too when the current file is short.
func tail(revision int, path string) Log {
	l := Log{Revision: revision, File: filepath.Base(path)}
	lines, cut, err := lastLines(path, maxLogLines)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.Error = truncate(err.Error(), maxFileReadErr)
	}
	if len(lines) < maxLogLines {
		older, olderCut, oerr := lastLines(path+rotatedSuffix, maxLogLines-len(lines))
		if oerr == nil {
			lines, cut = append(older, lines...), olderCut
		} else if err != nil {
			l.Error = truncate(err.Error(), maxFileReadErr) // neither could be read
		}
	}
	l.Truncated = cut
	l.Lines = make([]string, len(lines))
	for i, s := range lines {
		l.Lines[i] = redact.Text(truncate(s, maxLineBytes))
	}
	return l
}

// lastLines reads at most maxLogBytes from the end of the file and returns
// its last n complete lines; cut reports that earlier content was left out.
func lastLines(path string, n int) (lines []string, cut bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, false, fmt.Errorf("read log: %w", err)
	}
	start := max(0, size-maxLogBytes)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("read log: %w", err)
	}
	if start > 0 {
		cut = true
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:] // drop the partial first line
		}
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	if len(buf) == 0 {
		return nil, cut, nil
	}
	all := bytes.Split(buf, []byte("\n"))
	if len(all) > n {
		all, cut = all[len(all)-n:], true
	}
	for _, b := range all {
		lines = append(lines, string(bytes.TrimSuffix(b, []byte("\r"))))
	}
	return lines, cut, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + truncatedMark
}
