package manifest

import (
	"fmt"

	"github.com/lastgood/lastgood/internal/flags"
)

// MaxFlags is how many flags one manifest may declare.
const MaxFlags = 1000

// flags validates the flags: section; each flag's problems are the flags
// package's, located at flags[i].<field>.
func (v *validator) flags(fs []flags.Flag) {
	if len(fs) > MaxFlags {
		v.fail("flags", "declares %d flags; the limit is %d", len(fs), MaxFlags)
	}
	first := map[string]int{}
	for i := range fs {
		path := index("flags", i)
		for _, p := range flags.Validate(&fs[i]) {
			v.fail(child(path, p.Field), "%s", p.Message)
		}
		key := fs[i].Key
		if j, dup := first[key]; dup && key != "" {
			line := v.pos[index("flags", j)].line
			v.fail(child(path, "key"), "duplicate flag key %q; first declared at flags[%d] (line %d)", key, j, line)
		} else {
			first[key] = i
		}
	}
}

// FlagsError locates a problem with flag i of a manifest's flags: section
// (field relative to the flag), for problems found after parsing.
func FlagsError(file string, data []byte, i int, field, message string) *FieldError {
	return At(file, data, fmt.Sprintf("flags[%d].%s", i, field), message)
}
