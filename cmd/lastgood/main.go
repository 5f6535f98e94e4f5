// Command lastgood is a progressive-delivery and rollback controller. See
// the README and `lastgood help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lastgood/lastgood/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
