package manifest

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// At returns a problem located at the line of a field path (such as
// run.artifacts[1]) in a manifest's YAML. It is for problems found after
// parsing — a missing artifact file, an address in use — so that they name
// the line like every other manifest error. A path not found in data is
// reported at the nearest enclosing field that is.
func At(file string, data []byte, field, message string) *FieldError {
	e := &FieldError{File: file, Field: field, Message: message}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return e
	}
	n := doc.Content[0]
	e.Line, e.Column = n.Line, n.Column
	for _, part := range splitPath(field) {
		next := step(n, part)
		if next == nil {
			break
		}
		n = next
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// splitPath turns "run.command[0]" into ["run", "command", "[0]"].
func splitPath(p string) []string {
	var out []string
	for _, dotted := range strings.Split(p, ".") {
		for dotted != "" {
			i := strings.IndexByte(dotted[1:], '[')
			if i < 0 {
				out = append(out, dotted)
				break
			}
			out = append(out, dotted[:i+1])
			dotted = dotted[i+1:]
		}
	}
	return out
}

// step goes from a node to its child named by one path part.
func step(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			return n.Content[i+1]
		}
	}
	return nil
}
