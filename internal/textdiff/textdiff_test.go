package textdiff

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// check verifies that ops is an edit script from a to b (every line of
// each side once, in order, equal lines equal) and returns its edits.
func check(t *testing.T, a, b []string, ops []Op) int {
	t.Helper()
	i, j, edits := 0, 0, 0
	for _, op := range ops {
		switch op.Kind {
		case Equal:
			if op.A != i || op.B != j || a[i] != b[j] {
				t.Fatalf("a=%q b=%q: bad equal %+v at %d,%d", a, b, op, i, j)
			}
			i, j = i+1, j+1
		case Delete:
			if op.A != i {
				t.Fatalf("a=%q b=%q: delete %+v at %d", a, b, op, i)
			}
			i, edits = i+1, edits+1
		case Insert:
			if op.B != j {
				t.Fatalf("a=%q b=%q: insert %+v at %d", a, b, op, j)
			}
			j, edits = j+1, edits+1
		}
	}
	if i != len(a) || j != len(b) {
		t.Fatalf("a=%q b=%q: script ends at %d,%d", a, b, i, j)
	}
	return edits
}

// lcs is the length of a longest common subsequence, by dynamic
// programming: the reference a shortest script is checked against.
func lcs(a, b []string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func randomLines(r *rand.Rand, n, alphabet int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a'+r.IntN(alphabet))) + "\n"
	}
	return out
}

func TestDiffIsAShortestScript(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		a := randomLines(r, r.IntN(25), 1+r.IntN(5))
		b := randomLines(r, r.IntN(25), 1+r.IntN(5))
		edits := check(t, a, b, Diff(a, b))
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("a=%q b=%q: %d edits, a shortest script has %d", a, b, edits, want)
		}
	}
}

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{"": nil, "a": {"a"}, "a\n": {"a\n"}, "a\nb": {"a\n", "b"}, "\n\n": {"\n", "\n"}} {
		if got := Split(in); strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("Split(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnified(t *testing.T) {
	a := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	b := "one\n2\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven"
	got := Unified(File{Name: "a/x", Lines: Split(a)}, File{Name: "b/x", Lines: Split(b)}, 2)
	want := "--- a/x\n+++ b/x\n@@ -1,4 +1,4 @@\n one\n-two\n+2\n three\n four\n@@ -9,2 +9,3 @@\n nine\n ten\n+eleven\n\\ No newline at end of file\n"
	if got != want {
		t.Errorf("Unified:\n%s\nwant:\n%s", got, want)
	}
	if got := Unified(File{Lines: Split(a)}, File{Lines: Split(a)}, 3); got != "" {
		t.Errorf("equal texts: %q", got)
	}
	shown := Unified(File{Name: "a", Lines: Split("k: 1\n"), Show: []string{"k: [x]\n"}}, File{Name: "b", Lines: Split("k: 2\n"), Show: []string{"k: [x]\n"}}, 3)
	if shown != "--- a\n+++ b\n@@ -1 +1 @@\n-k: [x]\n+k: [x]\n" {
		t.Errorf("Show lines: %q", shown)
	}
}

// TestUnifiedMatchesGNUDiff compares the hunks with GNU diff's (--minimal)
// on random texts: the same headers and the same number of changed lines
// (two shortest scripts may align differently, so the lines themselves
// are checked by applying the patch).
func TestUnifiedMatchesGNUDiff(t *testing.T) {
	gnu, err := exec.LookPath("diff")
	if err != nil {
		t.Fatal("GNU diff (diffutils) is needed: apt-get install diffutils")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 200 {
		a := strings.Join(randomLines(r, r.IntN(40), 1+r.IntN(6)), "")
		b := strings.Join(randomLines(r, r.IntN(40), 1+r.IntN(6)), "")
		if n%3 == 0 && len(b) > 0 {
			b = b[:len(b)-1] // no newline at the end
		}
		ctx := r.IntN(4)
		ours := Unified(File{Name: "a", Lines: Split(a)}, File{Name: "b", Lines: Split(b)}, ctx)
		if got := apply(t, a, ours); got != b {
			t.Fatalf("applying our diff of %q → %q gives %q:\n%s", a, b, got, ours)
		}
		pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(pa, []byte(a), 0o644)
		os.WriteFile(pb, []byte(b), 0o644)
		out, _ := exec.Command(gnu, "--minimal", "-U", strconv.Itoa(ctx), "--label", "a", "--label", "b", pa, pb).Output()
		if changed(ours) != changed(string(out)) {
			t.Fatalf("%q → %q: we change %d lines, GNU diff %d:\n%s\n%s", a, b, changed(ours), changed(string(out)), ours, out)
		}
	}
}

func changed(diff string) int {
	n := 0
	for _, l := range strings.Split(diff, "\n") {
		if (strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---")) || (strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++")) {
			n++
		}
	}
	return n
}

// apply patches old with a unified diff, checking every header and
// context line: a reader's view of the format.
func apply(t *testing.T, old, diff string) string {
	t.Helper()
	if diff == "" {
		return old
	}
	src := Split(old)
	var out []string
	lines := strings.SplitAfter(diff, "\n")
	pos := 0 // next line of src to copy
	for i := 2; i < len(lines) && lines[i] != ""; {
		var as, al, bs, bl int
		h := lines[i]
		if _, err := parseHeader(h, &as, &al, &bs, &bl); err != nil {
			t.Fatalf("bad hunk header %q: %v\n%s", h, err, diff)
		}
		first := as - 1
		if al == 0 {
			first = as
		}
		out = append(out, src[pos:first]...)
		pos = first
		i++
		for ; i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i][1:]
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], `\ No newline`) {
				l = strings.TrimSuffix(l, "\n")
			}
			switch lines[i][0] {
			case ' ', '-':
				if pos >= len(src) || src[pos] != l {
					t.Fatalf("context or deleted line %q does not match %q at %d\n%s", l, src[min(pos, len(src)-1)], pos, diff)
				}
				if lines[i][0] == ' ' {
					out = append(out, l)
				}
				pos++
			case '+':
				out = append(out, l)
			case '\\':
			}
		}
	}
	return strings.Join(append(out, src[pos:]...), "")
}

func parseHeader(h string, as, al, bs, bl *int) (int, error) {
	f := strings.Fields(h) // @@ -a,b +c,d @@
	num := func(s string, start, n *int) error {
		p := strings.SplitN(s[1:], ",", 2)
		var err error
		if *start, err = strconv.Atoi(p[0]); err != nil {
			return err
		}
		*n = 1
		if len(p) == 2 {
			*n, err = strconv.Atoi(p[1])
		}
		return err
	}
	if err := num(f[1], as, al); err != nil {
		return 0, err
	}
	return 0, num(f[2], bs, bl)
}

func FuzzDiff(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd", uint8(3))
	f.Fuzz(func(t *testing.T, a, b string, ctx uint8) {
		la, lb := Split(a), Split(b)
		if len(la)*len(lb) > 1<<16 {
			return
		}
		edits := check(t, la, lb, Diff(la, lb))
		if want := len(la) + len(lb) - 2*lcs(la, lb); edits != want {
			t.Fatalf("%d edits, a shortest script has %d", edits, want)
		}
		if got := apply(t, a, Unified(File{Name: "a", Lines: la}, File{Name: "b", Lines: lb}, int(ctx%5))); got != b {
			t.Fatalf("the patch gives %q, want %q", got, b)
		}
	})
}

// TestDiffOfUnrelatedTextsIsBounded: two 20,000-line texts with no line
// in common need 40,000 edits; the search gives up on a shortest script
// past maxCost and still returns a valid one.
func TestDiffOfUnrelatedTextsIsBounded(t *testing.T) {
	a, b := make([]string, 20000), make([]string, 20000)
	for i := range a {
		a[i], b[i] = "a"+strconv.Itoa(i)+"\n", "b"+strconv.Itoa(i)+"\n"
	}
	if edits := check(t, a, b, Diff(a, b)); edits != 40000 {
		t.Fatalf("%d edits, want 40000", edits)
	}
	// Mostly equal texts with changes every 7 lines: more than maxCost
	// edits, so the script may be longer than a shortest, but valid.
	c := append([]string(nil), a...)
	for i := 0; i < len(c); i += 7 {
		c[i] = "changed\n"
	}
	edits := check(t, a, c, Diff(a, c))
	if shortest := 2 * ((len(a) + 6) / 7); edits < shortest {
		t.Fatalf("%d edits, fewer than the %d of a shortest script", edits, shortest)
	}
}

func BenchmarkDiff(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randomLines(r, 5000, 50)
	y := append([]string(nil), x...)
	for i := 0; i < len(y); i += 50 {
		y[i] = "changed\n"
	}
	for b.Loop() {
		Diff(x, y)
	}
}
