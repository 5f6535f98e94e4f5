package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Canonical returns the manifest as compact JSON: fields in the order of
// the Go types, map keys sorted, durations as Go duration strings, sizes as
// byte counts, IntOrPercent as a number or "25%". Two manifests that mean
// the same thing have the same Canonical bytes however their YAML was
// formatted, and FromJSON(a.Canonical()) equals a. A revision's digest is
// computed over these bytes. a is expected to come from Parse or FromJSON.
func (a *App) Canonical() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "result > 0.1" readable
	if err := enc.Encode(a); err != nil {
		// Every type in App marshals; only a bug gets here.
		panic(fmt.Sprintf("manifest: canonical JSON: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
