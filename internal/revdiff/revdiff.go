// Package revdiff compares two revisions of an app as people read them:
// the manifest field by field, the artifacts by digest and, for text
// artifacts, line by line as a unified diff — every secret redacted. The
// post-mortem of an incident and `lastgood diff` both show it.
package revdiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/textdiff"
)

// MaxText is the largest artifact shown as a text diff.
const MaxText = 256 << 10

// contextLines around each change of a text diff.
const contextLines = 3

// Diff is what changed from revision From to revision To.
type Diff struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Changes are the manifest's changed fields, secrets redacted.
	Changes []manifest.Change `json:"changes"`
	// Artifacts are the artifact paths whose digests differ, by path.
	Artifacts []Artifact `json:"artifacts"`
}

// Artifact is one artifact path whose content differs between the two
// revisions.
type Artifact struct {
	Path string `json:"path"`
	// Old and New are the digests; "" on the side that does not have it.
	Old string `json:"old"`
	New string `json:"new"`
	// Diff is a unified diff of the two contents, secrets redacted, when
	// both are text (UTF-8, no NUL, at most MaxText bytes; a missing side
	// is empty text).
	Diff string `json:"diff,omitempty"`
	// Note says why there is no Diff: binary, too large, not stored.
	Note string `json:"note,omitempty"`
}

// Blobs finds the stored copy of an artifact by digest (artifact.Store).
type Blobs interface {
	Path(digest string) (string, error)
}

// Compare compares revision a with revision b; a nil revision is an
// empty one (nothing before a first release). blobs may be nil, and then
// artifacts are compared by digest only.
func Compare(a, b *store.Revision, blobs Blobs) (Diff, error) {
	var d Diff
	var ma, mb *manifest.App
	var arts [2]map[string]string
	for i, r := range []*store.Revision{a, b} {
		if r == nil {
			continue
		}
		m, err := manifest.FromJSON(r.Manifest)
		if err != nil {
			return Diff{}, fmt.Errorf("revision %d: manifest: %w", r.Number, err)
		}
		if i == 0 {
			d.From, ma = r.Number, m
		} else {
			d.To, mb = r.Number, m
		}
		arts[i] = r.Artifacts
	}
	d.Changes = Changes(manifest.Diff(ma, mb))
	if d.Changes == nil {
		d.Changes = []manifest.Change{}
	}
	d.Artifacts = artifacts(d.From, d.To, arts[0], arts[1], blobs)
	return d, nil
}

// Changes redacts a manifest diff: the values of fields named like
// secrets (run.env.DB_PASS, notifications[0].secret) become redact.Pair's
// markers, and every other value goes through redact.JSON (a whole part)
// or redact.Text.
func Changes(cs []manifest.Change) []manifest.Change {
	if cs == nil {
		return nil
	}
	out := make([]manifest.Change, len(cs))
	for i, c := range cs {
		if redact.Name(fieldKey(c.Field)) {
			c.Old, c.New = redact.Pair(c.Old, c.New)
		} else {
			c.Old, c.New = changeValue(c.Old), changeValue(c.New)
		}
		out[i] = c
	}
	return out
}

// fieldKey is the key a Change's field path ends with: the variable of
// run.env.NAME (which may hold dots), else the last part of the path.
func fieldKey(field string) string {
	if k, ok := strings.CutPrefix(field, "run.env."); ok {
		return k
	}
	return field[strings.LastIndex(field, ".")+1:]
}

func changeValue(s string) string {
	t := strings.TrimSpace(s)
	if (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
		return string(redact.JSON(json.RawMessage(t)))
	}
	return redact.Text(s)
}

func artifacts(from, to int, a, b map[string]string, blobs Blobs) []Artifact {
	var paths []string
	for _, m := range []map[string]string{a, b} {
		for p := range m {
			if a[p] != b[p] && !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	slices.Sort(paths)
	out := make([]Artifact, 0, len(paths))
	for _, p := range paths {
		art := Artifact{Path: p, Old: a[p], New: b[p]}
		art.Diff, art.Note = textDiff(p, from, to, art.Old, art.New, blobs)
		out = append(out, art)
	}
	return out
}

// textDiff returns the redacted unified diff of two artifact contents,
// or a note saying why there is none.
func textDiff(path string, from, to int, oldDigest, newDigest string, blobs Blobs) (string, string) {
	if blobs == nil {
		return "", "compared by digest only"
	}
	var texts [2]string
	revs := [2]int{from, to}
	for i, digest := range []string{oldDigest, newDigest} {
		if digest == "" {
			continue
		}
		b, size, err := read(blobs, digest)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return "", fmt.Sprintf("%s is no longer stored", digest)
		case err != nil:
			return "", redact.Text(err.Error())
		}
		if bytes.IndexByte(b, 0) >= 0 || !validPrefix(b, size > int64(len(b))) {
			return "", "binary"
		}
		if size > MaxText {
			return "", fmt.Sprintf("text of %d bytes in revision %d, over %d KiB: not shown", size, revs[i], MaxText>>10)
		}
		texts[i] = string(b)
	}
	old := textdiff.File{Name: fmt.Sprintf("%s (revision %d)", path, from), Lines: textdiff.Split(texts[0]), Show: textdiff.Split(redact.TextKeepLines(texts[0]))}
	new := textdiff.File{Name: fmt.Sprintf("%s (revision %d)", path, to), Lines: textdiff.Split(texts[1]), Show: textdiff.Split(redact.TextKeepLines(texts[1]))}
	if len(old.Show) != len(old.Lines) || len(new.Show) != len(new.Lines) {
		return "", "text whose lines could not be redacted one by one"
	}
	return textdiff.Unified(old, new, contextLines), ""
}

// validPrefix reports whether b is UTF-8; when cut, b is the start of a
// longer text and may end inside a character.
func validPrefix(b []byte, cut bool) bool {
	if cut {
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return utf8.Valid(b)
}

// read returns an artifact's bytes, at most MaxText+1 of them, and its
// size.
func read(blobs Blobs, digest string) ([]byte, int64, error) {
	p, err := blobs.Path(digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxText+1))
	return b, fi.Size(), err
}
