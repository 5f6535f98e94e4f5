package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
)

// Change is one difference between two manifests. Field is a path like
// strategy.canary.steps[2].setWeight; Old and New are the values as text,
// "" when absent. A whole part present on one side only (a strategy, a
// check, a list item) is one Change whose value is that part's canonical
// JSON.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Diff compares two defaulted manifests field by field (maps by key, lists
// by index) and returns their differences in the order of the fields, map
// keys sorted. It compares meaning, not text: two YAML files that format the
// same manifest differently have no Change. A nil App is an empty one.
func Diff(a, b *App) []Change {
	if a == nil {
		a = &App{}
	}
	if b == nil {
		b = &App{}
	}
	var changes []Change
	diff(&changes, "", reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
	return changes
}

var stringer = reflect.TypeFor[fmt.Stringer]()

func diff(changes *[]Change, path string, x, y reflect.Value) {
	add := func(p string, old, new string) {
		if old != new {
			*changes = append(*changes, Change{Field: p, Old: old, New: new})
		}
	}
	if x.Type().Implements(stringer) || isBasic(x.Kind()) {
		add(path, text(x), text(y))
		return
	}
	switch x.Kind() {
	case reflect.Pointer:
		if x.IsNil() || y.IsNil() {
			add(path, text(x), text(y))
			return
		}
		diff(changes, path, x.Elem(), y.Elem())
	case reflect.Struct:
		for _, f := range jsonFields(x.Type()) {
			diff(changes, child(path, f.name), x.Field(f.index), y.Field(f.index))
		}
	case reflect.Slice:
		for i := range max(x.Len(), y.Len()) {
			p := index(path, i)
			switch {
			case i >= x.Len():
				add(p, "", text(y.Index(i)))
			case i >= y.Len():
				add(p, text(x.Index(i)), "")
			default:
				diff(changes, p, x.Index(i), y.Index(i))
			}
		}
	case reflect.Map:
		keys := map[string]bool{}
		for _, m := range []reflect.Value{x, y} {
			for _, k := range m.MapKeys() {
				keys[k.String()] = true
			}
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			kv := reflect.ValueOf(k).Convert(x.Type().Key())
			add(child(path, k), text(x.MapIndex(kv)), text(y.MapIndex(kv)))
		}
	default:
		panic(fmt.Sprintf("manifest: no diff for %s", x.Type()))
	}
}

func isBasic(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	}
	return false
}

// text formats a value for a Change: leaves as written in a manifest,
// anything bigger as compact JSON, and "" for nothing.
func text(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Interface()); err != nil {
		return fmt.Sprint(v.Interface())
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
