package migrate

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/golang-migrate/migrate/v4/source"
)

// Problem is one thing wrong with a migrations folder, named by its file.
type Problem struct {
	File    string
	Message string
}

func (p Problem) Error() string { return p.File + ": " + p.Message }

// FilePath is the key a migration file has among a revision's artifacts:
// the folder as written, cleaned, and the file name, joined by /.
func FilePath(dir, name string) string {
	return path.Join(path.Clean(strings.ReplaceAll(dir, `\`, "/")), name)
}

// InDir reports whether an artifact key names a file directly inside the
// migrations folder dir.
func InDir(dir, key string) bool {
	return path.Dir(key) == path.Clean(strings.ReplaceAll(dir, `\`, "/"))
}

// Layout builds the Set of the folder dir from its files (artifact key →
// digest, keys as FilePath makes them). Every file must be
// NNN_name.up.sql or NNN_name.down.sql; versions start at 1 and follow one
// another without a gap or a duplicate; a down file needs its up file. All
// the problems are returned, sorted by file.
func Layout(dir string, files map[string]string) (Set, []Problem) {
	set := Set{Dir: path.Clean(strings.ReplaceAll(dir, `\`, "/"))}
	var problems []Problem
	fail := func(file, format string, args ...any) {
		problems = append(problems, Problem{File: file, Message: fmt.Sprintf(format, args...)})
	}
	ups := map[uint64]*Migration{}
	downs := map[uint64][]string{}
	for _, key := range slices.Sorted(maps.Keys(files)) {
		name := path.Base(key)
		m, err := source.Parse(name)
		if err != nil || !strings.HasSuffix(name, ".sql") || strings.Count(name, ".") != 2 {
			fail(key, "is not a migration file: want NNN_name.up.sql or NNN_name.down.sql (golang-migrate's layout)")
			continue
		}
		digits := name[:strings.IndexByte(name, '_')]
		v := uint64(m.Version)
		if v == 0 {
			fail(key, "version 0: migrations are numbered from 1 (001_name.up.sql)")
			continue
		}
		if m.Identifier == "" {
			fail(key, "has no name after the version: want %s_name.%s.sql", digits, m.Direction)
			continue
		}
		switch m.Direction {
		case source.Up:
			if prev, dup := ups[v]; dup {
				fail(key, "has the version of %s: two up migrations numbered %d", prev.Up.Path, v)
				continue
			}
			ups[v] = &Migration{Version: v, Digits: digits, Name: m.Identifier, Up: Script{Path: key, Digest: files[key]}}
		case source.Down:
			downs[v] = append(downs[v], key)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(downs)) {
		keys := downs[v]
		up := ups[v]
		if len(keys) > 1 {
			fail(keys[1], "has the version of %s: two down migrations numbered %d", keys[0], v)
		}
		if up == nil {
			fail(keys[0], "has no up migration: add %s", strings.Replace(path.Base(keys[0]), ".down.sql", ".up.sql", 1))
			continue
		}
		want := up.Digits + "_" + up.Name + ".down.sql"
		if path.Base(keys[0]) != want {
			fail(keys[0], "does not match its up migration %s: name it %s", path.Base(up.Up.Path), want)
			continue
		}
		up.Down = &Script{Path: keys[0], Digest: files[keys[0]]}
	}
	want := uint64(1)
	for _, v := range slices.Sorted(maps.Keys(ups)) {
		m := ups[v]
		switch {
		case v != want && want == 1:
			fail(m.Up.Path, "is the first migration, numbered %d: numbering starts at 1 (a missing 001 is a gap)", v)
		case v != want:
			fail(m.Up.Path, "follows migration %d: %s missing (a gap in the numbering)", want-1, versionRange(want, v-1))
		}
		want = v + 1
		set.Migrations = append(set.Migrations, *m)
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.File, b.File) })
	return set, problems
}

func versionRange(lo, hi uint64) string {
	if lo == hi {
		return fmt.Sprintf("migration %d is", lo)
	}
	return fmt.Sprintf("migrations %d to %d are", lo, hi)
}

// Files lists the artifact keys of a set's files.
func (s Set) Files() []string {
	var out []string
	for _, m := range s.Migrations {
		out = append(out, m.Up.Path)
		if m.Down != nil {
			out = append(out, m.Down.Path)
		}
	}
	return out
}
