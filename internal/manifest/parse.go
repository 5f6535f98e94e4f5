package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest manifest accepted, in bytes.
const MaxSize = 1 << 20

// Parse reads one manifest from data, applies the defaults and validates
// it. file names the manifest in errors. Every problem is reported at once,
// as Errors, each with its line; the error matches ErrInvalid.
func Parse(file string, data []byte) (*App, error) {
	if err := checkBytes(file, data); err != nil {
		return nil, err
	}
	root, err := document(file, data)
	if err != nil {
		return nil, err
	}
	d := newDecoder(file)
	d.pos[""] = position{root.Line, root.Column}
	var app App
	d.decode(root, "", reflect.ValueOf(&app).Elem())
	app.setDefaults(func(path string) bool { _, ok := d.pos[path]; return ok })
	v := &validator{file: file, pos: d.pos}
	v.app(&app)

	errs := d.errs
	for _, e := range v.errs {
		// A value that could not be decoded was left empty; what
		// validation says about it (or about what holds it) is noise.
		if !slices.ContainsFunc(d.failed, func(f string) bool { return under(e.Field, f) || under(f, e.Field) }) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *FieldError) int { return a.Line - b.Line })
		return nil, errs
	}
	return &app, nil
}

// Load reads and parses the manifest file at path. It refuses files larger
// than MaxSize and files that are not UTF-8. The bytes are returned
// whenever they could be read, also with a parse error. Every error matches
// ErrInvalid; a missing file also matches fs.ErrNotExist.
func Load(path string) (*App, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	if info.IsDir() {
		return nil, nil, Errors{{File: path, Message: "is a directory, not a manifest file"}}
	}
	if info.Size() > MaxSize {
		return nil, nil, tooLarge(path, strconv.FormatInt(info.Size(), 10))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	app, err := Parse(path, data)
	return app, data, err
}

// FromJSON reads an App from its canonical JSON (see Canonical), applies
// the defaults and validates it. Unknown fields are errors.
func FromJSON(b []byte) (*App, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var app App
	if err := dec.Decode(&app); err != nil {
		return nil, Errors{{Message: "invalid JSON: " + err.Error(), cause: err}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errors{{Message: "invalid JSON: data after the manifest"}}
	}
	app.setDefaults(jsonFieldsIn(b))
	v := &validator{}
	v.app(&app)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return &app, nil
}

// jsonFieldsIn returns which field paths a JSON document gives.
func jsonFieldsIn(b []byte) written {
	var doc any
	_ = json.Unmarshal(b, &doc) // already decoded once without error
	paths := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		paths[path] = true
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(child(path, k), x)
			}
		case []any:
			for i, x := range v {
				walk(index(path, i), x)
			}
		}
	}
	walk("", doc)
	return func(path string) bool { return paths[path] }
}

// ArtifactPath resolves an artifact path as written in the manifest:
// absolute, or relative to dir, the manifest's folder.
func (a *App) ArtifactPath(dir, written string) string {
	if filepath.IsAbs(written) {
		return filepath.Clean(written)
	}
	return filepath.Join(dir, written)
}

func fileError(path string, err error) error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	if errors.Is(err, fs.ErrNotExist) {
		msg = "no such file"
	}
	return Errors{{File: path, Message: msg, cause: err}}
}

func tooLarge(file, size string) error {
	return Errors{{File: file, Message: fmt.Sprintf("manifest is %s bytes; the limit is %d", size, MaxSize)}}
}

// checkBytes refuses data that is too large or not UTF-8.
func checkBytes(file string, data []byte) error {
	if len(data) > MaxSize {
		return tooLarge(file, strconv.Itoa(len(data)))
	}
	if utf8.Valid(data) {
		return nil
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			line, col := lineOf(data, i)
			return Errors{{File: file, Line: line, Column: col,
				Message: fmt.Sprintf("not valid UTF-8: byte 0x%02x at offset %d (line %d, column %d); save the file as UTF-8", data[i], i, line, col)}}
		}
		i += size
	}
	return nil
}

// lineOf returns the 1-based line and column (in bytes) of offset.
func lineOf(data []byte, offset int) (line, col int) {
	before := data[:offset]
	return bytes.Count(before, []byte("\n")) + 1, offset - bytes.LastIndexByte(before, '\n')
}

// document parses data as exactly one YAML document holding a mapping and
// returns the mapping.
func document(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Line: 1, Column: 1, Message: "manifest is empty"}}
		}
		return nil, syntaxError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, data, err)
	default:
		return nil, Errors{{File: file, Line: extra.Line, Column: extra.Column,
			Message: "a second YAML document starts here; a manifest is one document (remove the ---)"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case isNull(root):
		return nil, Errors{{File: file, Line: 1, Column: 1, Message: "manifest is empty"}}
	case root.Kind != yaml.MappingNode:
		return nil, Errors{{File: file, Line: root.Line, Column: root.Column,
			Message: "a manifest is a mapping of fields (name: web …), got " + describe(root)}}
	}
	return root, nil
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are the YAML errors that go.yaml.in/yaml/v3 reports with
// a 0-based line (its scanner's errors are 1-based).
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxError turns a YAML parser error into a FieldError with its line.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1 // the parser leaves out the line when it is the first
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		msg = m[2]
		line, _ = strconv.Atoi(m[1])
		if slices.Contains(parserProblems, msg) {
			line++
		}
	} else if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line, _ = lineOf(data, i)
		}
	} else if i := firstControl(data); i >= 0 {
		line, _ = lineOf(data, i)
	}
	return Errors{{File: file, Line: line, Message: "invalid YAML: " + msg, cause: err}}
}

// firstControl returns the offset of the first character YAML does not
// allow in a document, or -1.
func firstControl(data []byte) int {
	for i, r := range string(data) {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff:
			return i
		}
	}
	return -1
}
