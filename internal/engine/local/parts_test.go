package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHysteresis(t *testing.T) {
	h := hysteresis{successThreshold: 2, failureThreshold: 3}
	steps := []struct {
		ok      bool
		changed bool
		passing bool
	}{
		{true, false, false}, {false, false, false}, // a failure resets the successes
		{true, false, false}, {true, true, true},
		{false, false, true}, {false, false, true}, {true, false, true}, // a pass resets the failures
		{false, false, true}, {false, false, true}, {false, true, false},
		{false, false, false},
	}
	for i, s := range steps {
		changed := h.observe(s.ok)
		if changed != s.changed || h.passing != s.passing {
			t.Fatalf("step %d (ok=%v): changed=%v passing=%v, want %v %v", i, s.ok, changed, h.passing, s.changed, s.passing)
		}
	}
}

func TestExpandArgs(t *testing.T) {
	env := map[string]string{"PORT": "8080", "A": "x", "B_2": "y"}
	got := expandArgs([]string{"--addr=127.0.0.1:${PORT}", "${A}${B_2}", "${MISSING}", "$A", "${", "${A", "a${}b", "${1X}", "100$"}, env)
	want := []string{"--addr=127.0.0.1:8080", "xy", "${MISSING}", "$A", "${", "${A", "a${}b", "${1X}", "100$"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expandArgs = %q, want %q", got, want)
	}
}

func TestLogFileRotatesOnLineBoundaries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "r.log")
	l, err := openLog(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var input strings.Builder
	for i := range 40 {
		fmt.Fprintf(&input, "line %02d %s\n", i, strings.Repeat("y", i%7))
	}
	if err := copyLines(strings.NewReader(input.String()+"no newline"), l); err != nil {
		t.Fatal(err)
	}
	cur, old := readFile(t, path), readFile(t, path+".1")
	if len(cur) > 100 || len(old) > 100 {
		t.Errorf("file sizes %d and %d, want at most 100", len(cur), len(old))
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Errorf("a second backup exists: %v", err)
	}
	whole := regexp.MustCompile(`^(line \d\d y*\n)*(no newline\n)?$`)
	if !whole.MatchString(old) || !whole.MatchString(cur) {
		t.Errorf("a rotation split a line:\n.1: %q\ncurrent: %q", old, cur)
	}
	if !strings.HasSuffix(old+cur, "line 39 yyyy\nno newline\n") {
		t.Errorf("the newest lines are not at the end of the log: %q", cur)
	}
	tail := l.lastLines()
	if len(tail) != tailLines || tail[len(tail)-1] != "no newline" || tail[0] != "line 21 " {
		t.Errorf("lastLines = %q", tail)
	}
}

func TestLogFileSplitsOnlyOverlongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.log")
	l, err := openLog(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	long := strings.Repeat("z", maxLine+10) + "\n"
	if err := copyLines(strings.NewReader("a\n"+long), l); err != nil {
		t.Fatal(err)
	}
	// The overlong line was written in a maxLine piece and a rest; each
	// rotation keeps one file, so memory and disk stay bounded.
	if got := len(readFile(t, path)); got != 11 {
		t.Errorf("current file %d bytes, want the 11-byte rest of the long line", got)
	}
	if got := len(readFile(t, path+".1")); got != maxLine {
		t.Errorf("backup %d bytes, want one %d-byte piece", got, maxLine)
	}
}

func TestReplicaLogIsWrittenAndBounded(t *testing.T) {
	e := startEngine(t, Config{LogLimit: 16 << 10})
	// 2000 lines of 93 bytes: about 186 KiB through a 16 KiB limit.
	spec := helperSpec(t, "chatty", 1, modeChatty, map[string]string{"CHATTY_LINES": "2000"})
	if err := e.Scale(context.Background(), spec, 1); err != nil {
		t.Fatal(err)
	}
	r := waitReady(t, e, "chatty", 1)[0]
	waitFor(t, 20*time.Second, "the last line in the log", func() bool {
		return strings.Contains(readFile(t, r.LogPath), "line 001999 ")
	})
	line := regexp.MustCompile(`^line \d{6} x{80}$`)
	for _, p := range []string{r.LogPath, r.LogPath + ".1"} {
		content := readFile(t, p)
		if len(content) > 16<<10 {
			t.Errorf("%s is %d bytes, over the 16 KiB limit", p, len(content))
		}
		for _, l := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
			if !line.MatchString(l) {
				t.Fatalf("%s holds a broken line %q", p, l)
			}
		}
	}
	matches, _ := filepath.Glob(r.LogPath + "*")
	if len(matches) != 2 {
		t.Errorf("log files %v, want the log and one backup", matches)
	}
}

func TestEnvironDropsLastgoodCredentials(t *testing.T) {
	t.Setenv("LASTGOOD_TOKEN", "secret")
	t.Setenv("SOME_SETTING", "kept")
	env := replicaEnv(Spec{App: "web", Revision: 4, Env: map[string]string{"SOME_SETTING": "app", "X": "1"}}, 9000)
	got := strings.Join(environ(env), "\n") + "\n"
	for _, want := range []string{"PORT=9000\n", "LASTGOOD_APP=web\n", "LASTGOOD_REVISION=4\n", "SOME_SETTING=app\n", "X=1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("environment lacks %q", want)
		}
	}
	if strings.Contains(got, "secret") {
		t.Error("the replica inherits LASTGOOD_TOKEN")
	}
}
