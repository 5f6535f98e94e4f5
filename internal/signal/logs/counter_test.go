package logs

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCountsOnlyWhatIsAppended(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	w.write("FATAL before the analysis\nplain\n")
	c := newCounter(t, path)
	all := newCounter(t, path, FromStart())

	want(t, poll(t, c), 0, 0)
	w.write("starting\npanic: one\nFATAL two\nfine\n")
	got := poll(t, c)
	want(t, got, 4, 2)
	if !slices.Equal(got.Last, []string{"panic: one", "FATAL two"}) {
		t.Errorf("Last = %q", got.Last)
	}
	want(t, poll(t, c), 4, 2) // nothing new
	want(t, poll(t, all), 6, 3)
}

func TestPartialLines(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	w.write("a line being writ") // in progress when the counter starts
	c := newCounter(t, path)
	w.write("ten, FATAL\n")
	want(t, poll(t, c), 0, 0) // its start predates the counter: not counted

	w.write("FATAL: par")
	want(t, poll(t, c), 0, 0)
	w.write("tial")
	want(t, poll(t, c), 0, 0)
	w.write("ly written\nnext")
	got := poll(t, c)
	want(t, got, 1, 1)
	if !slices.Equal(got.Last, []string{"FATAL: partially written"}) {
		t.Errorf("Last = %q", got.Last)
	}
	w.write("\n")
	want(t, poll(t, c), 2, 1)
}

func TestLongLinesUseBoundedMemory(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	c := newCounter(t, path)
	long := "panic: " + strings.Repeat("é", 1<<19) // 1 MiB
	w.write(long + "\n")
	// A match past the first 64 KiB of a line is not seen.
	w.write(strings.Repeat("x", 100<<10) + " FATAL\n")
	got := poll(t, c)
	want(t, got, 2, 1)
	if len(got.Last) != 1 || len(got.Last[0]) > 512 || len(got.Last[0]) < 500 || !strings.HasPrefix(long, got.Last[0]) {
		t.Errorf("Last = %d lines, first %d bytes; want one prefix of the long line of at most 512 bytes", len(got.Last), len(got.Last[0]))
	}
	if cap(c.lines.cur) > 2*maxKept {
		t.Errorf("line buffer grew to %d bytes", cap(c.lines.cur))
	}
}

func TestLastKeepsTheLatestFive(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	c := newCounter(t, path)
	for _, s := range []string{"panic 1", "panic 2", "ok", "panic 3", "panic 4", "panic 5", "panic 6", "panic 7"} {
		w.write(s + "\n")
	}
	got := poll(t, c)
	want(t, got, 8, 7)
	if w := []string{"panic 3", "panic 4", "panic 5", "panic 6", "panic 7"}; !slices.Equal(got.Last, w) {
		t.Errorf("Last = %q, want %q", got.Last, w)
	}
	got.Last[0] = "changed"
	if poll(t, c).Last[0] != "panic 3" {
		t.Error("the returned Last aliases the counter's memory")
	}
}

func TestRotationBetweenPolls(t *testing.T) {
	for _, style := range []string{"engine", "rename"} {
		t.Run(style, func(t *testing.T) {
			path := logPath(t)
			w := newWriter(t, path)
			rotate := w.rotate
			if style == "rename" {
				rotate = w.rotateByRename
			}
			c := newCounter(t, path)
			var lines, panics int64
			add := func(tag string, n int) { panics += w.burst(tag, n); lines += int64(n) }

			add("a", 30)
			want(t, poll(t, c), lines, panics)

			// One rotation in the middle of a burst, with a line cut in two
			// by it (only an over-long line is, by the engine).
			add("b", 25)
			w.write("FATAL split ")
			rotate()
			w.write("across files\n")
			lines, panics = lines+1, panics+1
			add("c", 15)
			got := poll(t, c)
			want(t, got, lines, panics)
			if got.Last[len(got.Last)-2] != "FATAL split across files" {
				t.Errorf("Last = %q", got.Last)
			}

			// Two rotations: the old file is finished through the open
			// descriptor, the backup was never seen and is read whole.
			add("d", 12)
			rotate()
			add("e", 40)
			rotate()
			add("f", 20)
			got = poll(t, c)
			want(t, got, lines, panics)
			if got.Rotations != 3 {
				t.Errorf("Rotations = %d, want 3", got.Rotations)
			}

			// Three rotations: the file in the middle is deleted by the
			// writer before the counter could see it; its lines are lost.
			add("g", 10)
			rotate()
			lost := w.burst("h", 50)
			rotate()
			add("i", 20)
			rotate()
			add("j", 30)
			want(t, poll(t, c), lines, panics)
			if lost == 0 {
				t.Fatal("the lost file had no panic lines")
			}
		})
	}
}

func TestRotationDuringAConcurrentBurst(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	c := newCounter(t, path)

	var polls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Poll(); err != nil {
				t.Error(err)
				return
			}
			polls.Add(1)
		}
	}()

	var lines, panics int64
	for range 20 {
		// At most two rotations between two polls, which lose nothing.
		seen := polls.Load()
		deadline := time.Now().Add(30 * time.Second)
		for polls.Load() < seen+1 {
			if time.Now().After(deadline) {
				t.Fatal("the poller stalled")
			}
			time.Sleep(time.Millisecond)
		}
		panics += w.burst("x", 150)
		w.rotate()
		panics += w.burst("y", 150)
		lines += 300
	}
	close(stop)
	wg.Wait()
	got := poll(t, c)
	want(t, got, lines, panics)
	if got.Rotations != 20 {
		t.Errorf("Rotations = %d, want 20", got.Rotations)
	}
}

func TestTruncation(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	c := newCounter(t, path)
	w.write("panic: 1\nok\nok\nok\nunfinished FATAL")
	want(t, poll(t, c), 4, 1)

	must(t, w.f.Truncate(0))
	w.write("FATAL after truncation\n")
	got := poll(t, c)
	// The unfinished line is counted as ended by the truncation.
	want(t, got, 6, 3)
	if got.Truncations != 1 {
		t.Errorf("Truncations = %d, want 1", got.Truncations)
	}
	w.write("ok\n")
	want(t, poll(t, c), 7, 3)
}

func TestMissingFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "web", "1", "web-1-0.log")
	c := newCounter(t, path)
	want(t, poll(t, c), 0, 0)
	want(t, poll(t, c), 0, 0)

	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	w := newWriter(t, path)
	w.write("panic: first\nok\n") // all of it was written after the counter started
	want(t, poll(t, c), 2, 1)

	// Removed, then created again: the new file is read from its start.
	must(t, os.Remove(path))
	want(t, poll(t, c), 2, 1)
	w.swap(w.open(path, os.O_EXCL))
	w.write("FATAL again\n")
	got := poll(t, c)
	want(t, got, 3, 2)
	if got.Rotations != 1 {
		t.Errorf("Rotations = %d, want 1", got.Rotations)
	}
}

func TestPollReportsUnreadablePath(t *testing.T) {
	dir := t.TempDir()
	c := newCounter(t, dir) // a directory: open works, reading fails
	if _, err := c.Poll(); !errors.Is(err, ErrNotFile) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Poll of a directory: err = %v, want an error naming it", err)
	}
}

func TestOtherExpressions(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	c := NewCounter(path, regexp.MustCompile(`^level=error\b`))
	defer c.Close()
	w.write("level=error msg=a\nlevel=errors msg=b\nx level=error\n\nlevel=error\n")
	want(t, poll(t, c), 5, 2)
}

func TestPollAfterCloseStartsOver(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path)
	w.write("panic: old\n")
	c := newCounter(t, path)
	w.write("panic: new\n")
	want(t, poll(t, c), 1, 1)
	must(t, c.Close())
	want(t, poll(t, c), 3, 3) // both lines again, from the start
}
