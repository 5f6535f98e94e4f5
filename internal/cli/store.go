package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

// The store commands: backup, audit verify, restore. With --data they
// read the data directory's state.db themselves (read-only), so they work
// with the server stopped; without it, backup and audit verify ask the
// server.

func init() {
	register(&command{name: "backup", args: "[--data DIR] OUT", nargs: [2]int{1, 1},
		examples: []string{"lastgood backup /backups/lastgood-$(date +%F).db", "lastgood backup --data /var/lib/lastgood /backups/offline.db"},
		summary:  "write a consistent copy of the state database to OUT (online; --data: read DIR directly), then verify the copy",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.data, "data", "", "read `DIR`/state.db directly instead of asking the server (works with lastgood stopped)")
		},
		run: runBackup})
	register(&command{name: "audit verify", args: "[--data DIR|FILE]", nargs: [2]int{0, 0},
		examples: []string{"lastgood audit verify", "lastgood audit verify --data /var/lib/lastgood", "lastgood audit verify --data /backups/lastgood.db"},
		summary:  "check the store: integrity, the event log's hash chain, and the heads recorded outside it (--data: with the server stopped)",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.data, "data", "", "verify the data directory `DIR` (or one database file, such as a backup) directly, read-only, instead of asking the server")
		},
		run: runAudit})
	register(&command{name: "restore", args: "--data DIR (BACKUP | --fresh | --accept)", nargs: [2]int{0, 1},
		examples: []string{"lastgood restore --data /var/lib/lastgood /backups/lastgood.db", "lastgood restore --data /var/lib/lastgood --accept"},
		summary:  "recover a data directory lastgood refuses to start on (with lastgood stopped): put a backup back, start over, or accept state.db as it is",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.data, "data", "", "the data directory `DIR` to recover (required)")
			fs.BoolVar(&o.fresh, "fresh", false, "start over with an empty store; the old state.db is kept beside it, artifacts and incidents stay")
			fs.BoolVar(&o.accept, "accept", false, "accept state.db as it is, behind its anchor; the loss is recorded in the event log")
		},
		run: runRestore})
}

func runBackup(ctx context.Context, e *Env, o *options) error {
	out := o.args[0]
	if _, err := os.Lstat(out); err == nil {
		return invalid("%s already exists; a backup never overwrites a file", out)
	}
	if o.data != "" {
		s, err := store.OpenDirReadOnly(o.data)
		if err != nil {
			return err
		}
		err = s.Backup(ctx, out)
		s.Close()
		if err != nil {
			return err
		}
	} else if err := o.client().Backup(ctx, out); err != nil {
		return err
	}
	a, err := store.VerifyFile(ctx, out)
	if err != nil {
		return fmt.Errorf("verify the backup %s: %w", out, err)
	}
	if o.output == "json" {
		printJSON(e.Stdout, map[string]any{"file": out, "audit": a})
	} else if a.OK() {
		fmt.Fprintf(e.Stdout, "backup %s: %d events, head %d %s (verified)\n", out, a.Events, a.HeadSeq, a.Head)
	} else {
		writeProblems(e.Stdout, a)
	}
	if !a.OK() {
		return &exitError{ExitFailure, nil}
	}
	return nil
}

func runAudit(ctx context.Context, e *Env, o *options) error {
	var a store.Audit
	var err error
	if o.data != "" {
		a, err = auditLocal(ctx, o.data)
	} else {
		a, err = o.client().Audit(ctx)
	}
	if err != nil {
		return err
	}
	if o.output == "json" {
		printJSON(e.Stdout, a)
	} else if a.OK() {
		fmt.Fprintf(e.Stdout, "event log verified: %d events, head %d %s\n", a.Events, a.HeadSeq, a.Head)
		switch {
		case a.Witnesses == 1:
			fmt.Fprintln(e.Stdout, "the 1 head recorded outside the database is in the log")
		case a.Witnesses > 1:
			fmt.Fprintf(e.Stdout, "all %d heads recorded outside the database (the anchor, incident bundles) are in the log\n", a.Witnesses)
		}
	} else {
		writeProblems(e.Stdout, a)
	}
	if !a.OK() {
		return &exitError{ExitFailure, nil}
	}
	return nil
}

// auditLocal verifies a data directory, or one database file, read-only.
func auditLocal(ctx context.Context, path string) (store.Audit, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return store.Audit{}, invalid("--data: %v", err)
	}
	if !fi.IsDir() {
		return store.VerifyFile(ctx, path)
	}
	s, err := store.OpenDirReadOnly(path)
	if errors.Is(err, os.ErrNotExist) {
		return store.Audit{}, fmt.Errorf("%s has no %s: not a lastgood data directory, or its state was lost (see `lastgood restore`)", path, store.DBFile)
	}
	if err != nil {
		return store.Audit{}, err
	}
	defer s.Close()
	// Witnesses before the log: see store.Verify.
	return s.Verify(ctx, incident.Witnesses(path+"/incidents")...)
}

func writeProblems(w io.Writer, a store.Audit) {
	for _, p := range a.Problems {
		fmt.Fprintf(w, "%s\n", p.Message)
	}
	fmt.Fprintf(w, "event log NOT verified: %d problems in %d events\n", len(a.Problems), a.Events)
}

func runRestore(ctx context.Context, e *Env, o *options) error {
	modes := 0
	for _, on := range []bool{len(o.args) == 1, o.fresh, o.accept} {
		if on {
			modes++
		}
	}
	if o.data == "" || modes != 1 {
		return invalid("want --data DIR and exactly one of BACKUP, --fresh, --accept\nusage: lastgood restore --data DIR (BACKUP | --fresh | --accept)")
	}
	var res store.Recovered
	var err error
	switch {
	case o.fresh:
		res, err = store.Fresh(ctx, o.data)
	case o.accept:
		res, err = store.Accept(ctx, o.data)
	default:
		res, err = store.Restore(ctx, o.data, o.args[0])
	}
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(e.Stdout, res)
	}
	fmt.Fprintf(e.Stdout, "%s: %s\nthe event log now ends at event %d %s; `lastgood serve --data %s` starts on it\n",
		o.data, res.Message, res.Head.Seq, res.Head.Hash, o.data)
	return nil
}
