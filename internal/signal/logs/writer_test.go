package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var panicRE = regexp.MustCompile(`panic|FATAL`)

// writer appends to a log file the way a process's output reaches it, and
// rotates it the way the local engine does.
type writer struct {
	t    *testing.T
	path string
	f    *os.File
}

func newWriter(t *testing.T, path string) *writer {
	t.Helper()
	w := &writer{t: t, path: path}
	w.f = w.open(path, 0)
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *writer) open(path string, flag int) *os.File {
	w.t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|flag, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

func (w *writer) write(s string) {
	w.t.Helper()
	if _, err := w.f.WriteString(s); err != nil {
		w.t.Fatal(err)
	}
}

// burst writes n lines; every tenth says "panic". It returns the number of
// panic lines written.
func (w *writer) burst(tag string, n int) int64 {
	w.t.Helper()
	var panics int64
	for i := range n {
		if i%10 == 9 {
			w.write(fmt.Sprintf("%s %d panic: boom\n", tag, i))
			panics++
		} else {
			w.write(fmt.Sprintf("%s %d all is well\n", tag, i))
		}
	}
	return panics
}

// rotate does what the local engine does: hard-link the file to .1, then
// rename a new empty file over the path, so the path never disappears.
func (w *writer) rotate() {
	w.t.Helper()
	backup, fresh := w.path+".1", w.path+".new"
	if err := os.Remove(backup + ".new"); err != nil && !os.IsNotExist(err) {
		w.t.Fatal(err)
	}
	must(w.t, os.Link(w.path, backup+".new"))
	must(w.t, os.Rename(backup+".new", backup))
	f := w.open(fresh, os.O_TRUNC)
	must(w.t, os.Rename(fresh, w.path))
	w.swap(f)
}

// rotateByRename is the classic rotation: rename to .1, create the path.
func (w *writer) rotateByRename() {
	w.t.Helper()
	must(w.t, os.Rename(w.path, w.path+".1"))
	w.swap(w.open(w.path, os.O_EXCL))
}

func (w *writer) swap(f *os.File) {
	w.t.Helper()
	old := w.f
	w.f = f
	must(w.t, old.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, c *Counter) Count {
	t.Helper()
	n, err := c.Poll()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCounter(t *testing.T, path string, opts ...Option) *Counter {
	t.Helper()
	c := NewCounter(path, panicRE, opts...)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func logPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "web-1-0.log")
}

// want compares the counts that tests care about.
func want(t *testing.T, got Count, lines, matches int64) {
	t.Helper()
	if got.Lines != lines || got.Matches != matches {
		t.Errorf("got %d lines, %d matches; want %d, %d (%+v)", got.Lines, got.Matches, lines, matches, got)
	}
}
