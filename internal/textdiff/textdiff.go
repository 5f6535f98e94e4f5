// Package textdiff compares two texts line by line and writes the
// difference as a unified diff. The comparison is Myers' O(ND) algorithm
// in linear space (E. W. Myers, "An O(ND) Difference Algorithm and Its
// Variations", Algorithmica 1, 1986, section 4b): the edit script is a
// shortest one, unless the texts differ so much that finding it would be
// too slow (see maxCost).
package textdiff

import (
	"fmt"
	"strings"
)

// Kind says what an Op does.
type Kind byte

// The kinds of Op.
const (
	Equal  Kind = ' '
	Delete Kind = '-'
	Insert Kind = '+'
)

// Op is one step of an edit script: line A of the old text stays as line
// B of the new one (Equal), is deleted (Delete, B unused), or line B of the
// new text is inserted (Insert, A unused).
type Op struct {
	Kind Kind
	A, B int
}

// Split cuts text into lines, each with its "\n"; the last line has none
// when the text does not end with one. "" has no lines.
func Split(text string) []string {
	if text == "" {
		return nil
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Diff returns an edit script from a to b, in order: a shortest one
// unless they differ in more than about 2×maxCost lines.
func Diff(a, b []string) []Op {
	ids := map[string]int{}
	intern := func(ls []string) []int {
		out := make([]int, len(ls))
		for i, l := range ls {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	d := &differ{a: intern(a), b: intern(b)}
	size := len(a) + len(b) + 2
	d.vf, d.vb = make([]int, 2*size+1), make([]int, 2*size+1)
	d.compare(0, len(a), 0, len(b))
	return d.ops
}

// maxCost bounds the edits one middle-snake search looks through: texts
// that differ more than that get a valid script that may not be a
// shortest one, in time O((N+M)·maxCost) rather than O((N+M)·D).
const maxCost = 1024

type differ struct {
	a, b   []int
	vf, vb []int // furthest x per diagonal, forward and backward
	ops    []Op
}

func (d *differ) compare(aLo, aHi, bLo, bHi int) {
	for aLo < aHi && bLo < bHi && d.a[aLo] == d.b[bLo] {
		d.ops = append(d.ops, Op{Equal, aLo, bLo})
		aLo, bLo = aLo+1, bLo+1
	}
	suffix := 0
	for aLo < aHi-suffix && bLo < bHi-suffix && d.a[aHi-suffix-1] == d.b[bHi-suffix-1] {
		suffix++
	}
	aHi, bHi = aHi-suffix, bHi-suffix
	switch {
	case aLo == aHi:
		for j := bLo; j < bHi; j++ {
			d.ops = append(d.ops, Op{Kind: Insert, B: j})
		}
	case bLo == bHi:
		for i := aLo; i < aHi; i++ {
			d.ops = append(d.ops, Op{Kind: Delete, A: i})
		}
	default:
		x, y, u, v := d.middleSnake(aLo, aHi, bLo, bHi)
		d.compare(aLo, x, bLo, y)
		for i := range u - x {
			d.ops = append(d.ops, Op{Equal, x + i, y + i})
		}
		d.compare(u, aHi, v, bHi)
	}
	for i := range suffix {
		d.ops = append(d.ops, Op{Equal, aHi + i, bHi + i})
	}
}

// middleSnake finds the middle snake of a shortest path from (aLo, bLo)
// to (aHi, bHi): the diagonal run (x, y) → (u, v) where the forward and
// the backward searches meet. Both ranges are non-empty and differ in
// their first and last lines, so the path has at least two edits and the
// snake splits it into two shorter ones.
func (d *differ) middleSnake(aLo, aHi, bLo, bHi int) (x, y, u, v int) {
	n, m := aHi-aLo, bHi-bLo
	delta := n - m
	odd := delta&1 != 0
	off := n + m + 1 // index of diagonal 0 in vf and vb
	// vf[off+k]: furthest x reached on diagonal k = x - y from (0, 0);
	// vb[off+k]: furthest x reached on diagonal k of the reversed texts,
	// searching back from (n, m). Coordinates are relative to aLo, bLo.
	d.vf[off+1], d.vb[off+1] = 0, 0
	forward := func(x, y int) bool { return d.a[aLo+x] == d.b[bLo+y] }
	backward := func(x, y int) bool { return d.a[aHi-1-x] == d.b[bHi-1-y] }
	for D := 0; D <= (n+m+1)/2; D++ {
		best := -1 // the forward snake that got furthest at this D
		var bx, by, bu, bv int
		for k := -D; k <= D; k += 2 {
			px, py, sx, sy := step(d.vf, off, k, D, n, m, forward)
			if kb := delta - k; odd && kb >= -(D-1) && kb <= D-1 && sx+d.vb[off+kb] >= n {
				return aLo + px, bLo + py, aLo + sx, bLo + sy
			}
			if sx+sy > best && sx <= n && sy >= 0 && sy <= m && (px < n || py < m) { // on the grid, not at its end
				best, bx, by, bu, bv = sx+sy, px, py, sx, sy
			}
		}
		if D >= maxCost && best >= 0 {
			// Too expensive to search on for a shortest script: split at
			// the forward snake that got furthest (a valid script, maybe
			// not a shortest one; GNU diff does alike). It lies strictly
			// inside, so both halves are smaller.
			return aLo + bx, bLo + by, aLo + bu, bLo + bv
		}
		for k := -D; k <= D; k += 2 {
			px, py, sx, sy := step(d.vb, off, k, D, n, m, backward)
			if kf := delta - k; !odd && kf >= -D && kf <= D && sx+d.vf[off+kf] >= n {
				// The reversed snake (px, py) → (sx, sy) runs forward from
				// (n-sx, m-sy) to (n-px, m-py).
				return aHi - sx, bHi - sy, aHi - px, bHi - py
			}
		}
	}
	panic("textdiff: no middle snake") // unreachable: the searches meet by (n+m+1)/2
}

// step extends diagonal k at edit D of one search: from the furthest point
// of D-1 on a neighbouring diagonal, one edit, then along the snake of
// equal lines; v keeps the furthest x per diagonal, eq compares lines x
// and y in the search's direction.
func step(v []int, off, k, D, n, m int, eq func(x, y int) bool) (px, py, sx, sy int) {
	if k == -D || (k != D && v[off+k-1] < v[off+k+1]) {
		px = v[off+k+1]
	} else {
		px = v[off+k-1] + 1
	}
	py = px - k
	sx, sy = px, py
	for sx < n && sy < m && eq(sx, sy) {
		sx, sy = sx+1, sy+1
	}
	v[off+k] = sx
	return px, py, sx, sy
}

// File is one side of a unified diff.
type File struct {
	Name string
	// Lines are compared (Split keeps their "\n").
	Lines []string
	// Show, when not nil, holds the lines printed in place of Lines, one
	// for one (a redacted copy, say).
	Show []string
}

func (f File) show(i int) string {
	if f.Show != nil {
		return f.Show[i]
	}
	return f.Lines[i]
}

// Unified writes the difference of a and b as a unified diff with context
// lines of context around each change, "" when they are equal. A last
// line without a newline is marked "\ No newline at end of file".
func Unified(a, b File, context int) string {
	ops := Diff(a.Lines, b.Lines)
	// aAt[i], bAt[i]: the lines of a and b before ops[i].
	aAt, bAt := make([]int, len(ops)+1), make([]int, len(ops)+1)
	for i, op := range ops {
		aAt[i+1], bAt[i+1] = aAt[i], bAt[i]
		if op.Kind != Insert {
			aAt[i+1]++
		}
		if op.Kind != Delete {
			bAt[i+1]++
		}
	}
	var out strings.Builder
	for i := 0; i < len(ops); {
		if ops[i].Kind == Equal {
			i++
			continue
		}
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", a.Name, b.Name)
		}
		// A hunk runs from context lines before this change to context
		// lines after the last change that follows the one before it by
		// at most 2×context equal lines.
		start, end := max(0, i-context), i+1
		for j := i + 1; j < len(ops) && j-end < 2*context+1; j++ {
			if ops[j].Kind != Equal {
				end = j + 1
			}
		}
		end = min(len(ops), end+context)
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aAt[start], aAt[end]-aAt[start]), hunkRange(bAt[start], bAt[end]-bAt[start]))
		for _, op := range ops[start:end] {
			var line string
			if op.Kind == Insert {
				line = b.show(op.B)
			} else {
				line = a.show(op.A)
			}
			out.WriteByte(byte(op.Kind))
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return out.String()
}

// hunkRange formats one side of a hunk header as GNU diff does: from
// line before+1, n lines, ",1" left out; an empty range names the line
// after which it stands.
func hunkRange(before, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, n)
}
