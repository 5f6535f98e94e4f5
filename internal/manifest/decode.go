package manifest

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// position is where a field is written: the line and column of its key, or
// of the list item.
type position struct{ line, column int }

// decoder fills a Go value from a YAML node tree. One reflect-based walk
// serves every manifest type: struct fields are found by their json tag, so
// the YAML keys and the canonical JSON keys are the same names. It records
// where each field path was written so that validation can point at lines,
// and collects every problem instead of stopping at the first.
type decoder struct {
	file   string
	errs   Errors
	failed []string            // field paths whose value could not be decoded
	pos    map[string]position // field path → where it is written
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]position{}}
}

func (d *decoder) fail(n *yaml.Node, path, msg string) {
	d.errs = append(d.errs, &FieldError{File: d.file, Line: n.Line, Column: n.Column, Field: path, Message: msg})
	d.failed = append(d.failed, path)
}

// decode stores n into v, which must be addressable.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if s, ok := v.Addr().Interface().(scalar); ok {
		d.scalar(n, path, s)
		return
	}
	if v.Type() == rawJSONType {
		d.rawJSON(n, path, v)
		return
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.fail(n, path, "expected a string, got "+describe(n))
		} else if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		// A key without a value means an empty mapping for structs
		// ("pause:" is "pause: {}") and "not set" for scalars.
		if isNull(n) && v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Slice:
		d.list(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	default:
		d.basic(n, path, v)
	}
}

var rawJSONType = reflect.TypeFor[json.RawMessage]()

// rawJSON stores any YAML value (a flag variant's) as its JSON.
func (d *decoder) rawJSON(n *yaml.Node, path string, v reflect.Value) {
	var x any
	if err := n.Decode(&x); err != nil {
		d.fail(n, path, "cannot be read as JSON: "+err.Error())
		return
	}
	b, err := json.Marshal(x)
	if err != nil {
		d.fail(n, path, "cannot be written as JSON (mapping keys must be strings; no .inf or .nan): "+err.Error())
		return
	}
	v.SetBytes(b)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// pairs checks that n is a mapping with scalar, distinct keys and calls f
// for each key and value. want names what was expected, for the error.
func (d *decoder) pairs(n *yaml.Node, path, want string, f func(key, value *yaml.Node)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected "+want+", got "+describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		for key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		switch {
		case key.Kind != yaml.ScalarNode:
			d.fail(key, path, "keys must be plain names, got "+describe(key))
			continue
		case key.ShortTag() == "!!merge":
			d.fail(key, path, "merge keys (<<) are not supported; write the fields out")
			continue
		}
		if line, dup := seen[key.Value]; dup {
			d.fail(key, child(path, key.Value), fmt.Sprintf("duplicate key; first set at line %d", line))
			continue
		}
		seen[key.Value] = key.Line
		f(key, value)
	}
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	fields := jsonFields(v.Type())
	d.pairs(n, path, "a mapping", func(key, value *yaml.Node) {
		p := child(path, key.Value)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key.Value })
		if i < 0 {
			msg := "unknown field"
			if s := closest(key.Value, fields); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.fail(key, p, msg)
			return
		}
		d.pos[p] = position{key.Line, key.Column}
		d.decode(value, p, v.Field(fields[i].index))
	})
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	m := reflect.MakeMap(v.Type())
	d.pairs(n, path, "a mapping", func(key, value *yaml.Node) {
		p := child(path, key.Value)
		d.pos[p] = position{key.Line, key.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(value, p, elem)
		m.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), elem)
	})
	if m.Len() > 0 {
		v.Set(m) // an empty mapping is the same as none
	}
}

func (d *decoder) list(n *yaml.Node, path string, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got "+describe(n))
		return
	}
	if len(n.Content) == 0 {
		return // an empty list is the same as none
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		d.pos[p] = position{item.Line, item.Column}
		d.decode(item, p, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, path string, s scalar) {
	tag := "" // not a scalar: every setScalar answers with a mismatch
	if n.Kind == yaml.ScalarNode {
		tag = n.ShortTag()
	}
	if err := s.setScalar(tag, n.Value); err != nil {
		d.fail(n, path, scalarMessage(n, err))
	}
}

func scalarMessage(n *yaml.Node, err error) string {
	var m *mismatch
	if errors.As(err, &m) {
		return "expected " + m.want + ", got " + describe(n)
	}
	return err.Error()
}

// basic stores a string, bool, integer or float.
func (d *decoder) basic(n *yaml.Node, path string, v reflect.Value) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode {
		tag = ""
	}
	var err error
	switch v.Kind() {
	case reflect.String:
		switch tag {
		case "!!str", "!!int", "!!float", "!!timestamp":
			v.SetString(n.Value)
		case "!!bool":
			err = fmt.Errorf("expected a string, got boolean %s (quote it to mean the text: \"%s\")", n.Value, n.Value)
		default:
			err = &mismatch{"a string"}
		}
	case reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true", "false":
			if tag == "!!bool" {
				v.SetBool(strings.ToLower(n.Value) == "true")
				break
			}
			fallthrough
		default:
			err = &mismatch{"true or false"}
		}
	case reflect.Int:
		var i int
		i, err = parseIntNode(tag, n.Value)
		if err == nil {
			v.SetInt(int64(i))
		}
	case reflect.Float64:
		var f float64
		f, err = parseFloatNode(tag, n.Value)
		if err == nil {
			v.SetFloat(f)
		}
	default:
		panic(fmt.Sprintf("manifest: no YAML decoding for %s", v.Type()))
	}
	if err != nil {
		d.fail(n, path, scalarMessage(n, err))
	}
}

func parseIntNode(tag, value string) (int, error) {
	switch tag {
	case "!!int":
		return parseInt(value)
	case "!!float":
		// The YAML resolver calls integers too large for 64 bits floats.
		if strings.Trim(strings.TrimLeft(value, "+-"), "0123456789_") == "" {
			return 0, fmt.Errorf("number %s is %w", value, errOutOfRange)
		}
	}
	return 0, &mismatch{"an integer"}
}

func parseFloatNode(tag, value string) (float64, error) {
	if tag != "!!int" && tag != "!!float" {
		return 0, &mismatch{"a number"}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(value, "_", ""), 64)
	if tag == "!!int" {
		var i int
		i, err = parseInt(value)
		f = float64(i)
	}
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("number %s is %w", value, errOutOfRange)
	}
	return f, nil
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!str":
		return "string " + strconv.Quote(v)
	case "!!int":
		return "integer " + v
	case "!!float":
		return "number " + v
	case "!!bool":
		return "boolean " + v
	case "!!null":
		return "nothing (null)"
	case "!!timestamp":
		return "timestamp " + v
	}
	return n.ShortTag() + " " + strconv.Quote(v)
}

// field is a struct field known by its json name.
type field struct {
	name  string
	index int
}

// jsonFields lists the fields of struct type t that have a json name, in
// declaration order.
func jsonFields(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields = append(fields, field{name, i})
		}
	}
	return fields
}

// closest returns the known field name nearest to a misspelt one, or "".
func closest(name string, fields []field) string {
	best, bestDist := "", 3
	for _, fl := range fields {
		f := fl.name
		dist := editDistance(strings.ToLower(name), strings.ToLower(f))
		if dist < bestDist || (dist == bestDist && f < best) {
			best, bestDist = f, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
