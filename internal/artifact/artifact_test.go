package artifact

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// helloDigest is the SHA-256 of "hello\n", as sha256sum prints it.
const helloDigest = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entries lists the names in the store's top directory and its sha256 folder.
func entries(t *testing.T, s *Store) (top, copies []string) {
	t.Helper()
	for _, d := range []struct {
		dir string
		out *[]string
	}{{s.Dir(), &top}, {filepath.Join(s.Dir(), "sha256"), &copies}} {
		es, err := os.ReadDir(d.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			*d.out = append(*d.out, e.Name())
		}
	}
	return top, copies
}

func TestPutRoundTrip(t *testing.T) {
	s := openStore(t)
	d, err := s.Put(strings.NewReader("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d != helloDigest {
		t.Fatalf("digest = %s, want %s", d, helloDigest)
	}
	if !s.Has(d) {
		t.Fatal("Has = false after Put")
	}
	p, err := s.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Dir(), "sha256", strings.TrimPrefix(helloDigest, "sha256:")); p != want {
		t.Fatalf("path = %s, want %s", p, want)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello\n" {
		t.Fatalf("content = %q", got)
	}
	if err := s.Verify(d); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	client, err := DigestReader(strings.NewReader("hello\n"))
	if err != nil || client != d {
		t.Fatalf("DigestReader = %s, %v; want %s", client, err, d)
	}
}

func TestPutIsIdempotentAndLeavesNoTemporaries(t *testing.T) {
	s := openStore(t)
	first, err := s.Put(strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Put(strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("digests differ: %s, %s", first, second)
	}
	top, copies := entries(t, s)
	if len(copies) != 1 {
		t.Fatalf("copies = %v, want one", copies)
	}
	if len(top) != 1 || top[0] != "sha256" {
		t.Fatalf("store directory holds %v, want only sha256", top)
	}
}

func TestCopiesAreReadOnly(t *testing.T) {
	s := openStore(t)
	src := filepath.Join(t.TempDir(), "web")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := s.PutFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d)
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o555 {
		t.Fatalf("mode = %o, want 555", got)
	}
	fromFile, err := Digest(src)
	if err != nil || fromFile != d {
		t.Fatalf("Digest(file) = %s, %v; want %s", fromFile, err, d)
	}
}

func TestPutFileRejectsDirectoriesAndMissingFiles(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	_, err := s.PutFile(dir)
	if !errors.Is(err, ErrNotFile) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("PutFile(dir) = %v; want ErrNotFile naming %s", err, dir)
	}
	missing := filepath.Join(dir, "bin", "nope")
	_, err = s.PutFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("PutFile(missing) = %v; want fs.ErrNotExist naming %s", err, missing)
	}
	if _, err := Digest(dir); !errors.Is(err, ErrNotFile) {
		t.Fatalf("Digest(dir) = %v; want ErrNotFile", err)
	}
	if _, copies := entries(t, s); len(copies) != 0 {
		t.Fatalf("failed puts stored %v", copies)
	}
}

// failingReader yields some bytes, then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n--
		return copy(p, "partial"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestPutOfFailingReaderLeavesNothing(t *testing.T) {
	s := openStore(t)
	_, err := s.Put(&failingReader{n: 3})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put = %v; want the reader's error", err)
	}
	top, copies := entries(t, s)
	if len(copies) != 0 || len(top) != 1 {
		t.Fatalf("left behind %v and %v", top, copies)
	}
}

func TestMalformedDigests(t *testing.T) {
	s := openStore(t)
	bad := []string{
		"",
		"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha512:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha256:5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03",
		"sha256:5891b5b5",
		"sha256:../../../../etc/passwd",
	}
	for _, d := range bad {
		if _, err := s.Path(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Path(%q) = %v; want ErrBadDigest", d, err)
		}
		if err := s.Verify(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Verify(%q) = %v; want ErrBadDigest", d, err)
		}
		if s.Has(d) {
			t.Errorf("Has(%q) = true", d)
		}
	}
	if _, err := s.Path(helloDigest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Path(absent) = %v; want fs.ErrNotExist", err)
	}
}

func TestVerifyDetectsTamperingAndPutRepairs(t *testing.T) {
	s := openStore(t)
	d, err := s.Put(strings.NewReader("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d)
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = s.Verify(d)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify(tampered) = %v; want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), d) {
		t.Fatalf("error %q does not name the digest", err)
	}
	if _, err := s.Put(strings.NewReader("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(d); err != nil {
		t.Fatalf("Verify after re-Put: %v", err)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o555 {
		t.Fatalf("repaired copy has mode %o", info.Mode().Perm())
	}
}

func TestGCKeepsWhatItMust(t *testing.T) {
	s := openStore(t)
	var ds []string
	for _, c := range []string{"one", "two", "three"} {
		d, err := s.Put(strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	// A stranger's file and a fresh temporary file must survive; an old
	// temporary file must not.
	stranger := filepath.Join(s.Dir(), "sha256", "README")
	fresh := filepath.Join(s.Dir(), ".put-fresh")
	old := filepath.Join(s.Dir(), ".put-old")
	for _, f := range []string{stranger, fresh, old} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}

	removed, err := s.GC(map[string]bool{ds[0]: true, ds[2]: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != ds[1] {
		t.Fatalf("removed = %v, want [%s]", removed, ds[1])
	}
	for i, want := range []bool{true, false, true} {
		if s.Has(ds[i]) != want {
			t.Errorf("Has(%s) = %v after GC, want %v", ds[i], !want, want)
		}
	}
	for f, want := range map[string]bool{stranger: true, fresh: true, old: false} {
		_, err := os.Stat(f)
		if (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", f, err == nil, want)
		}
	}
	again, err := s.GC(map[string]bool{ds[0]: true, ds[2]: true})
	if err != nil || len(again) != 0 {
		t.Fatalf("second GC = %v, %v; want nothing removed", again, err)
	}
}

func TestConcurrentPutOfSameContent(t *testing.T) {
	s := openStore(t)
	content := bytes.Repeat([]byte("lastgood "), 200_000) // ~1.8 MB
	want, err := DigestReader(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	digests := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			digests[i], errs[i] = s.Put(bytes.NewReader(content))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || digests[i] != want {
			t.Fatalf("put %d = %s, %v; want %s", i, digests[i], errs[i], want)
		}
	}
	if err := s.Verify(want); err != nil {
		t.Fatal(err)
	}
	top, copies := entries(t, s)
	if len(copies) != 1 || len(top) != 1 {
		t.Fatalf("after concurrent puts: top %v, copies %v", top, copies)
	}
	p, _ := s.Path(want)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, content) {
		t.Fatal("stored content differs from what was put")
	}
}
