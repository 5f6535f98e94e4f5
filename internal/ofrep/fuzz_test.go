package ofrep

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRequest checks the request body handling against encoding/json
// read the plain way: a body it accepts has exactly the context a plain
// json.Unmarshal finds (and a string targetingKey, if any); a body it
// refuses is one the plain reading refuses too, or one whose context is
// not an object, or whose targetingKey is not a string. It never panics.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"context": {}}`, `{"context": {"targetingKey": "u1", "a": {"b": [1, 2]}}}`,
		`{"context": null}`, `{"context": [1]}`, `{"context": {"targetingKey": 3}}`, `{"context": {}} x`,
		`[]`, `"x"`, `{"context": {"a": 1e400}}`, `{"Context": {"a": 1}}`, ` {"context":{"x":"\u00e9"}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx, code, details := parseRequest(bytes.NewReader(body))
		var plain struct {
			Context *map[string]any `json:"context"`
		}
		plainErr := json.Unmarshal(body, &plain)
		empty := len(bytes.TrimSpace(body)) == 0
		if code != "" {
			if details == "" {
				t.Fatalf("%q: error %s without details", body, code)
			}
			if code != ParseError && code != InvalidContext {
				t.Fatalf("%q: unexpected code %s", body, code)
			}
			if plainErr == nil && !empty {
				// Refused though plain JSON reads it: only for the
				// targeting key's type.
				tk, has := (map[string]any)(nil)["targetingKey"], false
				if plain.Context != nil {
					tk, has = (*plain.Context)["targetingKey"]
				}
				if _, isString := tk.(string); !has || isString {
					t.Fatalf("%q: refused (%s: %s) what encoding/json reads as %v", body, code, details, plain.Context)
				}
			}
			return
		}
		if ctx == nil {
			t.Fatalf("%q: accepted with a nil context", body)
		}
		if empty {
			if len(ctx) != 0 {
				t.Fatalf("empty body, context %v", ctx)
			}
			return
		}
		if plainErr != nil {
			// encoding/json.Unmarshal refuses what Decoder plus an EOF
			// check accepts only for invalid UTF-8 handling differences —
			// there are none: both must agree.
			if !strings.Contains(plainErr.Error(), "cannot unmarshal") {
				t.Fatalf("%q: accepted what encoding/json refuses: %v", body, plainErr)
			}
		}
		want := map[string]any{}
		if plain.Context != nil && *plain.Context != nil {
			want = *plain.Context
		}
		if plainErr == nil && !reflect.DeepEqual(ctx, want) {
			t.Fatalf("%q: context %v, encoding/json reads %v", body, ctx, want)
		}
	})
}
