package local

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// replicaEnv is the environment added to a replica: Spec.Env plus the
// variables lastgood sets, which win.
func replicaEnv(spec Spec, port int) map[string]string {
	env := make(map[string]string, len(spec.Env)+3)
	for k, v := range spec.Env {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	env["LASTGOOD_APP"] = spec.App
	env["LASTGOOD_REVISION"] = strconv.Itoa(spec.Revision)
	return env
}

// environ is the full environment of a child: lastgood's own without its
// LASTGOOD_* variables (LASTGOOD_TOKEN is a credential for lastgood's API,
// not for the app), overridden by the replica's.
func environ(env map[string]string) []string {
	merged := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && !strings.HasPrefix(k, "LASTGOOD_") {
			merged[k] = v
		}
	}
	for k, v := range env {
		merged[k] = v
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// expandArgs replaces ${NAME} in every argument with env[NAME]. A reference
// to a name env does not hold is left as written, so a typo shows in the
// replica's arguments instead of silently becoming empty. $NAME without
// braces is not a reference.
func expandArgs(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandBraces(a, env)
	}
	return out
}

func expandBraces(s string, env map[string]string) string {
	var b strings.Builder
	for {
		start := strings.Index(s, "${")
		if start < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[start:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[start+2 : start+end]
		b.WriteString(s[:start])
		if v, ok := env[name]; ok && validName(name) {
			b.WriteString(v)
		} else {
			b.WriteString(s[start : start+end+1])
		}
		s = s[start+end+1:]
	}
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// resolveProgram finds the executable a replica runs: an absolute path as
// is, a path with a slash relative to dir, a bare name in PATH. The result
// is absolute. Errors wrap ErrCommandNotFound or ErrNotExecutable and name
// the path.
func resolveProgram(name, dir, pathEnv string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty program name", ErrInvalidSpec)
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", p, err)
		}
		return abs, checkExecutable(abs)
	}
	var notExec error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue // never resolve through the working directory
		}
		p := filepath.Join(d, name)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, ErrNotExecutable) && notExec == nil {
			notExec = err
		}
	}
	if notExec != nil {
		return "", notExec
	}
	return "", fmt.Errorf("%w: %s (searched PATH=%s)", ErrCommandNotFound, name, pathEnv)
}

// checkExecutable reports whether p is a regular file with an execute bit.
func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrCommandNotFound, p)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotExecutable, p, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrNotExecutable, p)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s has no execute permission (mode %s)", ErrNotExecutable, p, fi.Mode().Perm())
	}
	return nil
}

// pathOf is the PATH a replica's program is looked up in.
func pathOf(env map[string]string) string {
	if p, ok := env["PATH"]; ok {
		return p
	}
	return os.Getenv("PATH")
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process may
// take it before the replica binds it; the replica then fails and is
// restarted on a new port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
