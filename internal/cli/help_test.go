package cli

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp checks that every command's --help and `lastgood
// help CMD` exit 0 and show the usage line, every flag the command takes
// with its default, and at least one example that runs the command.
func TestEveryCommandHasHelp(t *testing.T) {
	env := func(out *bytes.Buffer) *Env {
		return &Env{Stdout: out, Stderr: out, Getenv: func(string) string { return "" }}
	}
	if len(commands) < 15 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for _, c := range commands {
		var viaFlag, viaHelp bytes.Buffer
		args := append(strings.Fields(c.name), "--help")
		if code := Main(context.Background(), args, env(&viaFlag)); code != ExitOK {
			t.Errorf("lastgood %s --help exited %d", c.name, code)
		}
		helpArgs := append([]string{"help"}, strings.Fields(c.name)...)
		if code := Main(context.Background(), helpArgs, env(&viaHelp)); code != ExitOK {
			t.Errorf("lastgood help %s exited %d", c.name, code)
		}
		out := viaFlag.String()
		if out != viaHelp.String() {
			t.Errorf("lastgood %s --help and lastgood help %s differ:\n%s\n---\n%s", c.name, c.name, out, viaHelp.String())
		}
		if !strings.HasPrefix(out, "usage: lastgood "+c.name) {
			t.Errorf("%s: help starts %.40q", c.name, out)
		}
		fs := flagSet(c, &options{}, env(&bytes.Buffer{}))
		fs.VisitAll(func(f *flag.Flag) {
			row := flagHelp(f)
			if !strings.Contains(out, "\n  "+row[0]) {
				t.Errorf("%s: help does not list %s:\n%s", c.name, row[0], out)
			}
			if def := f.DefValue; def != "" && def != "false" && def != "0" && !strings.Contains(out, "(default "+def+")") {
				t.Errorf("%s: help does not say --%s defaults to %s", c.name, f.Name, def)
			}
		})
		if len(c.examples) == 0 {
			t.Errorf("%s has no example", c.name)
		}
		for _, ex := range c.examples {
			if !strings.Contains(ex, "lastgood "+c.name) || !strings.Contains(out, "\n  "+ex+"\n") {
				t.Errorf("%s: example %q does not run it, or is not in the help", c.name, ex)
			}
		}
	}
}

// TestLocalCommandsTakeNoServer checks that serve and demo, which talk to
// no server, do not offer --server or -o.
func TestLocalCommandsTakeNoServer(t *testing.T) {
	for _, c := range commands {
		fs := flagSet(c, &options{}, &Env{Getenv: func(string) string { return "" }})
		if got := fs.Lookup("server") != nil; got == c.local {
			t.Errorf("%s: --server offered %v, local %v", c.name, got, c.local)
		}
	}
}
