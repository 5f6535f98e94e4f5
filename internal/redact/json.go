package redact

import (
	"bytes"
	"encoding/json"
)

// JSON redacts raw JSON: the string values of fields named like secrets
// (Name; in arrays under such a field too) become Marker, unless empty or
// a reference ($VAR, ${VAR}), and every other string goes through Text.
// Numbers, booleans and the structure stay; objects come back with their
// keys sorted, compact. Raw that is not JSON comes back as a JSON string
// of its redacted text.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return marshal(Text(string(raw)))
	}
	return marshal(jsonValue(v, false))
}

func marshal(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage(`"` + Marker + `"`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// jsonValue redacts v; secret tells that v is the value of a field named
// like a secret (or an element of an array that is).
func jsonValue(v any, secret bool) any {
	switch x := v.(type) {
	case string:
		if secret {
			return Value(x)
		}
		return Text(x)
	case []any:
		for i := range x {
			x[i] = jsonValue(x[i], secret)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = jsonValue(e, Name(k))
		}
	}
	return v
}

// Value is what is shown of the value of a key named like a secret:
// Marker, unless it is empty or a reference ($VAR, ${VAR}) that names the
// secret without holding it.
func Value(v string) string {
	if v == "" || reference.MatchString(v) {
		return v
	}
	return Marker
}

// Pair is what a diff shows of a secret's old and new value: Marker for
// each side that has one (references as they are), and Changed as the
// new side when both are hidden and differ.
func Pair(old, new string) (string, string) {
	o, n := Value(old), Value(new)
	if o == Marker && n == Marker && old != new {
		n = Changed
	}
	return o, n
}
