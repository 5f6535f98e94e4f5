package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/server"
)

func init() {
	register(&command{name: "serve", args: "[--data DIR] [--api ADDR] [--engine local|kubernetes] [--kubeconfig FILE] [--namespace NS]", nargs: [2]int{0, 0},
		summary: "run the controller, the routers and the API",
		local:   true,
		examples: []string{
			"lastgood serve --data /var/lib/lastgood",
			"LASTGOOD_TOKEN=s3cret lastgood serve --api 127.0.0.1:7070",
			"lastgood serve --engine kubernetes --kubeconfig ~/.kube/config --namespace shop",
		},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.data, "data", ".lastgood", "data directory")
			fs.StringVar(&o.apiAddr, "api", "127.0.0.1:7070", "API listen address")
			fs.StringVar(&o.engine, "engine", "local", "where revisions run: local or kubernetes")
			fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubernetes engine: kubeconfig file (default $KUBECONFIG, the pod's service account, then ~/.kube/config)")
			fs.StringVar(&o.namespace, "namespace", "", "kubernetes engine: namespace of apps whose manifest names none (default the kubeconfig's)")
			fs.StringVar(&o.addrFile, "addr-file", "", "write the API's address to this file once it listens (for scripts using --api 127.0.0.1:0)")
			fs.StringVar(&o.reserve, "reserve", "8Mi", "disk space kept preallocated in the data directory and given up on a full disk so a rollback can be recorded (0: none)")
		},
		run: runServe,
	})
}

func runServe(ctx context.Context, e *Env, o *options) error {
	switch o.engine {
	case "local":
		if o.kubeconfig != "" || o.namespace != "" {
			return invalid("--kubeconfig and --namespace are for --engine kubernetes")
		}
	case "kubernetes":
	default:
		return invalid("--engine: want local or kubernetes, got %q", o.engine)
	}
	var reserve manifest.Size
	if err := reserve.UnmarshalJSON([]byte(strconv.Quote(o.reserve))); err != nil {
		return invalid("--reserve: %v", err)
	}
	if reserve == 0 {
		reserve = -1 // none
	}
	log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := server.Run(ctx, server.Config{
		DataDir: o.data, API: o.apiAddr, Token: e.Getenv("LASTGOOD_TOKEN"), Version: Version, Log: log,
		Engine: o.engine, Kubeconfig: o.kubeconfig, Namespace: o.namespace, Reserve: int64(reserve),
		Listening: func(addr string) {
			log.Info("lastgood serving", "api", "http://"+addr, "data", o.data, "version", Version)
			if o.addrFile != "" {
				if err := writeAtomic(o.addrFile, []byte(addr+"\n")); err != nil {
					fmt.Fprintf(e.Stderr, "lastgood serve: write %s: %v\n", o.addrFile, err)
				}
			}
		},
	})
	if errors.Is(err, server.ErrEngineConfig) {
		return &exitError{ExitInvalid, err}
	}
	return err
}

// writeAtomic writes a file that readers see whole or not at all.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
