// Command router benchmarks lastgood's router against a direct connection
// to the backend and against nginx as a keep-alive reverse proxy. run.sh
// starts the processes; this one binary plays each part:
//
//	router backend -listen ADDR                 a trivial HTTP backend
//	router proxy   -listen ADDR -backend ADDR   lastgood's router with one route
//	router wait    URL...                       waits until every URL answers 200
//	router load    -url URL -rate R -d 10s      one open-loop run, prints JSON
//	router compare -direct URL -router URL -nginx URL
//	                                            the whole measurement, as Markdown
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "router bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: router backend|proxy|wait|load|compare [flags]")
	}
	cmds := map[string]func(context.Context, []string) error{
		"backend": runBackend,
		"proxy":   runProxy,
		"wait":    runWait,
		"load":    runLoad,
		"compare": runCompare,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd(ctx, args[1:])
}
