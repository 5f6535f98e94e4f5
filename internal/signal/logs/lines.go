package logs

import (
	"bytes"
	"regexp"
	"unicode/utf8"
)

const (
	// maxKept is how much of one line is kept and matched; the rest of a
	// longer line is counted but not looked at. It equals the local engine's
	// longest unsplit log line.
	maxKept = 64 << 10
	// lastLines and lastLineMax bound the matching lines remembered.
	lastLines   = 5
	lastLineMax = 512
)

// lineCounter splits bytes into lines and counts those that match. It does
// no I/O; memory is bounded by maxKept plus the remembered lines.
type lineCounter struct {
	re      *regexp.Regexp
	cur     []byte // kept prefix of the unfinished line
	open    bool   // bytes of an unfinished line have been fed
	skip    bool   // drop everything up to the next newline, uncounted
	lines   int64
	matches int64
	last    []string // ring of matching lines, oldest at next once full
	next    int
}

// feed takes the next bytes of the stream.
func (l *lineCounter) feed(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.add(b)
			return
		}
		l.add(b[:i])
		l.end()
		b = b[i+1:]
	}
}

func (l *lineCounter) add(p []byte) {
	if l.skip {
		return
	}
	l.open = true
	if room := maxKept - len(l.cur); room > 0 {
		l.cur = append(l.cur, p[:min(room, len(p))]...)
	}
}

// end completes the current line.
func (l *lineCounter) end() {
	if l.skip {
		l.skip = false
		return
	}
	l.lines++
	if l.re.Match(l.cur) {
		l.matches++
		l.remember(l.cur)
	}
	l.cur, l.open = l.cur[:0], false
}

// flush completes an unfinished line, if any, as if it ended here.
func (l *lineCounter) flush() {
	if l.open {
		l.end()
	}
	l.skip = false
}

func (l *lineCounter) remember(line []byte) {
	if len(line) > lastLineMax {
		n := lastLineMax
		for n > 0 && !utf8.RuneStart(line[n]) {
			n--
		}
		line = line[:n]
	}
	s := string(line)
	if len(l.last) < lastLines {
		l.last = append(l.last, s)
		return
	}
	l.last[l.next] = s
	l.next = (l.next + 1) % lastLines
}

// lastMatches returns the remembered matching lines, oldest first.
func (l *lineCounter) lastMatches() []string {
	out := make([]string, 0, len(l.last))
	for i := range l.last {
		out = append(out, l.last[(l.next+i)%len(l.last)])
	}
	return out
}
