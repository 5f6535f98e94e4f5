package conventions

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot finds the directory holding go.mod above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test")
		}
		dir = parent
	}
}

// packages returns every directory with non-test Go files, skipping
// testdata and hidden directories.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	root := moduleRoot(t)
	pkgs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			pkgs[rel] = append(pkgs[rel], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	pkgs := packages(t)
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages; the walk is broken", len(pkgs))
	}
	for dir, files := range pkgs {
		documented := false
		for _, f := range files {
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil && strings.TrimSpace(file.Doc.Text()) != "" {
				documented = true
				want := "Package " + file.Name.Name + " "
				if file.Name.Name == "main" {
					want = "" // commands start with their own name
				}
				if !strings.HasPrefix(file.Doc.Text(), want) {
					t.Errorf("%s: package comment should start with %q", f, want)
				}
			}
		}
		if !documented {
			t.Errorf("package %s has no doc comment: say what it is for in one of its files", dir)
		}
	}
}

// TestClientGoOnlyInTheKubernetesEngine keeps Kubernetes out of everything
// but internal/engine/kube, so the local engine stays small. bench/kube, a
// command of its own that watches the cluster from outside lastgood, may
// use client-go too.
func TestClientGoOnlyInTheKubernetesEngine(t *testing.T) {
	for dir, files := range packages(t) {
		if d := filepath.ToSlash(dir); strings.HasPrefix(d, "internal/engine/kube") || d == "bench/kube" {
			continue
		}
		for _, f := range files {
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range file.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "sigs.k8s.io/controller-runtime") {
					t.Errorf("%s imports %s; only internal/engine/kube may", f, p)
				}
			}
		}
	}
}
