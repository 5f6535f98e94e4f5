package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lastgood/lastgood/internal/api"
)

// Bench is a running `lastgood serve` with the binaries it was built
// from, in a temporary directory of its own.
type Bench struct {
	Root     string // the temporary directory
	Bins     Binaries
	Server   *Server
	Client   *api.Client
	log      string
	keep     bool
	name     string
	progress io.Writer
}

// Start makes a temporary directory, builds lastgood and the sample app
// into it and starts `lastgood serve` with its data there. name tells the
// benchmark in progress lines; keep leaves the directory (data, logs) for
// inspection. Call Close when done, whatever happened.
func Start(ctx context.Context, name string, keep bool, progress io.Writer) (*Bench, error) {
	root, err := os.MkdirTemp("", "lastgood-"+name+"-bench-")
	if err != nil {
		return nil, err
	}
	b := &Bench{Root: root, log: filepath.Join(root, "serve.log"), keep: keep, name: name, progress: progress}
	fmt.Fprintf(progress, "%s bench: building lastgood and the sample app\n", name)
	if b.Bins, err = Build(ctx, root); err != nil {
		b.removeDir()
		return nil, err
	}
	if b.Server, err = StartServe(ctx, b.Bins.Lastgood, filepath.Join(root, "data"), b.log); err != nil {
		err = b.withLog(err)
		b.removeDir()
		return nil, err
	}
	b.Client = &api.Client{Base: b.Server.Base}
	return b, nil
}

// Close stops lastgood (if Shutdown has not), adds the end of lastgood's
// log to err when there is one, removes the directory unless kept, and
// returns err.
func (b *Bench) Close(err error) error {
	b.Server.Stop()
	if err != nil {
		err = b.withLog(err)
	}
	b.removeDir()
	return err
}

// withLog adds the last lines of lastgood's log to err.
func (b *Bench) withLog(err error) error {
	return fmt.Errorf("%w\nlast lines of lastgood's log:\n%s", err, Tail(b.log, 20))
}

func (b *Bench) removeDir() {
	if b.keep {
		fmt.Fprintf(b.progress, "%s bench: kept %s\n", b.name, b.Root)
		return
	}
	os.RemoveAll(b.Root)
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
