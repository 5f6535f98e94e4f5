// Package cli is lastgood's command line: it parses flags, talks to the API
// through api.Client, prints tables or JSON, and turns every outcome into
// the exit codes of DESIGN.md. Only cmd/lastgood calls os.Exit.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/manifest"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitInvalid  = 2 // invalid input or usage; nothing was changed
	ExitRollback = 3 // with --wait: the rollout ended in a rollback or abort
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// Env is what a command runs with: its streams and environment.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand.
type command struct {
	name, args, summary string
	// details, when set, says more than the summary in `--help`.
	details string
	// examples are whole command lines, shown by `--help`.
	examples []string
	// local commands run on this machine and take no --server or -o.
	local bool
	flags func(fs *flag.FlagSet, o *options)
	run   func(ctx context.Context, e *Env, o *options) error
	nargs [2]int // min, max positional arguments (-1: any)
}

// options holds every flag; each command declares the ones it takes.
type options struct {
	server, output, token, caCert string
	args                          []string
	serve                         serveFlags
	httpClient                    *http.Client // nil: http.DefaultClient

	file, data, apiAddr, addrFile, engine string
	kubeconfig, namespace                 string
	wait, waitWindow, watch, follow, full bool
	toRevision                            int
	toRevisionSet                         bool
	fast, force                           bool
	format                                string
	reserve                               string
	fresh, accept                         bool
	variant                               string // flags set --variant
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

// Main runs one command line and returns its exit code.
func Main(ctx context.Context, args []string, e *Env) int {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if len(args) >= 2 && args[0] == "help" {
		// lastgood help CMD: the command's own help
		cmd, _ := lookup(args[1:])
		if cmd == nil {
			fmt.Fprintf(e.Stderr, "lastgood help: unknown command %q; run `lastgood help`\n", strings.Join(args[1:min(3, len(args))], " "))
			return ExitInvalid
		}
		help(e.Stdout, cmd, e)
		return ExitOK
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.Stdout)
		if len(args) == 0 {
			return ExitInvalid
		}
		return ExitOK
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		fmt.Fprintf(e.Stderr, "lastgood: unknown command %q; run `lastgood help`\n", strings.Join(args[:min(2, len(args))], " "))
		return ExitInvalid
	}
	o, err := parse(cmd, rest, e)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(e.Stdout, cmd, e)
			return ExitOK
		}
		fmt.Fprintf(e.Stderr, "lastgood %s: %v\nusage: lastgood %s %s\nrun `lastgood help %s` for its flags and examples\n",
			cmd.name, err, cmd.name, cmd.args, cmd.name)
		return ExitInvalid
	}
	if err := cmd.run(ctx, e, o); err != nil {
		return report(e, cmd.name, err)
	}
	return ExitOK
}

// lookup finds the command args start with (one word, or two for `get
// apps` and `audit verify`) and returns it with the arguments after its
// name; nil when there is none.
func lookup(args []string) (*command, []string) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// flagSet declares every flag cmd takes into a new set writing into o.
func flagSet(cmd *command, o *options, e *Env) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	if !cmd.local {
		server := e.Getenv("LASTGOOD_SERVER")
		if server == "" {
			server = "http://127.0.0.1:7070"
		}
		fs.StringVar(&o.server, "server", server, "`URL` of the lastgood API; LASTGOOD_SERVER sets the default")
		fs.StringVar(&o.output, "o", "text", "output `FORMAT`: text or json")
		fs.StringVar(&o.caCert, "ca-cert", e.Getenv("LASTGOOD_CA_CERT"), "trust the PEM certificate `FILE` (a CA's, or the server's own) for an https --server; LASTGOOD_CA_CERT sets the default")
	}
	return fs
}

// parse reads flags wherever they stand among the positional arguments.
func parse(cmd *command, args []string, e *Env) (*options, error) {
	o := &options{output: "text"}
	fs := flagSet(cmd, o, e)
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.args = append(o.args, args[0])
		args = args[1:]
	}
	if o.output != "text" && o.output != "json" {
		return nil, fmt.Errorf("-o: want text or json, got %q", o.output)
	}
	if n := len(o.args); n < cmd.nargs[0] || (cmd.nargs[1] >= 0 && n > cmd.nargs[1]) {
		return nil, fmt.Errorf("want %s", describeArgs(cmd))
	}
	o.token = e.Getenv("LASTGOOD_TOKEN")
	if !strings.Contains(o.server, "://") {
		o.server = "http://" + o.server
	}
	if o.caCert != "" {
		hc, err := api.HTTPClient(o.caCert)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %v", err)
		}
		o.httpClient = hc
	}
	return o, nil
}

func describeArgs(c *command) string {
	if c.args == "" {
		return "no arguments"
	}
	return "arguments " + c.args
}

func (o *options) client() *api.Client {
	return &api.Client{Base: o.server, Token: o.token, HTTP: o.httpClient}
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func invalid(format string, args ...any) error {
	return &exitError{ExitInvalid, fmt.Errorf(format, args...)}
}

// report prints err and returns its exit code: 2 for input the server
// refused with nothing changed, 1 for anything else.
func report(e *Env, name string, err error) int {
	code := ExitFailure
	if ee, ok := errors.AsType[*exitError](err); ok {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	if se, ok := errors.AsType[*api.StatusError](err); ok {
		switch se.Code {
		case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
			code = ExitInvalid
		}
		if len(se.Body.Problems) > 0 {
			for _, p := range se.Body.Problems {
				fmt.Fprintf(e.Stderr, "%s\n", formatProblem(p))
			}
			return code
		}
	}
	if errors.Is(err, manifest.ErrInvalid) {
		// Manifest problems already say FILE:LINE: FIELD: what is wanted.
		fmt.Fprintln(e.Stderr, err)
		return code
	}
	msg := err.Error()
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(e.Stderr, "lastgood %s: %s\n", name, line)
	}
	return code
}

func formatProblem(p *api.Problem) string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// help writes a command's usage, what it does, its flags with their
// defaults, and examples.
func help(w io.Writer, cmd *command, e *Env) {
	fmt.Fprintf(w, "usage: lastgood %s\n\n%s.\n", strings.TrimSpace(cmd.name+" "+cmd.args), upperFirst(cmd.summary))
	if cmd.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.details))
	}
	fs := flagSet(cmd, &options{}, e)
	var rows [][2]string
	fs.VisitAll(func(f *flag.Flag) { rows = append(rows, flagHelp(f)) })
	if len(rows) > 0 {
		fmt.Fprintln(w, "\nflags:")
		width := 0
		for _, r := range rows {
			width = max(width, len(r[0]))
		}
		for _, r := range rows {
			fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
		}
	}
	if len(cmd.examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, ex := range cmd.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// flagHelp is a flag's row in help: its spelling with a placeholder for
// its value, and what it does with its default when that is not the zero
// value. One-letter flags take one dash, others two (both work).
func flagHelp(f *flag.Flag) [2]string {
	placeholder, text := flag.UnquoteUsage(f)
	if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
		placeholder = ""
	} else if !strings.Contains(f.Usage, "`") {
		switch placeholder {
		case "int":
			placeholder = "N"
		default: // string, duration, value: the flag's own name
			placeholder = strings.ToUpper(f.Name)
		}
	}
	dashes := "--"
	if len(f.Name) == 1 {
		dashes = "-"
	}
	spelled := strings.TrimSpace(dashes + f.Name + " " + placeholder)
	switch f.DefValue {
	case "", "0", "false", "0s":
	default:
		text += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	return [2]string{spelled, text}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "lastgood — progressive delivery that returns to the last known-good revision by itself")
	fmt.Fprintln(w, "\nusage: lastgood COMMAND [ARGS] [--server URL] [-o json]\n\ncommands:")
	cs := append([]*command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	width := 0
	for _, c := range cs {
		width = max(width, len(strings.TrimSpace(c.name+" "+c.args)))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nexit codes: 0 done, 1 failure, 2 invalid input (nothing changed), 3 rollout rolled back or aborted (--wait)")
	fmt.Fprintln(w, "`lastgood help COMMAND` (or `lastgood COMMAND --help`) shows a command's flags, defaults and examples")
}
