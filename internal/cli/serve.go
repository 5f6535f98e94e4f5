package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/ofrep"
	"github.com/lastgood/lastgood/internal/server"
)

// serveFlags are the flags only serve takes.
type serveFlags struct {
	tokensFile, tlsCert, tlsKey, metricsAuth string
	otlp                                     string
	ofrep, ofrepTokens, ofrepAddrFile        string
	ofrepRate                                float64
	allowedHosts                             hostList
	insecureNoAuth                           bool
}

// hostList is a repeatable --allowed-host.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error {
	*h = append(*h, v)
	return nil
}

func init() {
	register(&command{name: "serve", args: "[--data DIR] [--api ADDR] [--engine local|kubernetes] [--kubeconfig FILE] [--namespace NS] [--tokens-file F] [--tls-cert F --tls-key F]", nargs: [2]int{0, 0},
		summary: "run the controller, the routers and the API",
		local:   true,
		examples: []string{
			"lastgood serve --data /var/lib/lastgood",
			"LASTGOOD_TOKEN=s3cret lastgood serve --api 127.0.0.1:7070",
			"lastgood serve --engine kubernetes --kubeconfig ~/.kube/config --namespace shop",
			"lastgood serve --api 0.0.0.0:7070 --tokens-file /etc/lastgood/tokens --tls-cert cert.pem --tls-key key.pem",
		},
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.data, "data", ".lastgood", "data directory")
			fs.StringVar(&o.apiAddr, "api", "127.0.0.1:7070", "API listen address")
			fs.StringVar(&o.engine, "engine", "local", "where revisions run: local or kubernetes")
			fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubernetes engine: kubeconfig file (default $KUBECONFIG, the pod's service account, then ~/.kube/config)")
			fs.StringVar(&o.namespace, "namespace", "", "kubernetes engine: namespace of apps whose manifest names none (default the kubeconfig's)")
			fs.StringVar(&o.addrFile, "addr-file", "", "write the API's address to this file once it listens (for scripts using --api 127.0.0.1:0)")
			fs.StringVar(&o.reserve, "reserve", "8Mi", "disk space kept preallocated in the data directory and given up on a full disk so a rollback can be recorded (0: none)")
			fs.StringVar(&o.serve.tokensFile, "tokens-file", "", "`FILE` of API tokens with roles, NAME ROLE SECRET a line (docs/security.md); LASTGOOD_TOKENS_FILE sets the default")
			fs.Var(&o.serve.allowedHosts, "allowed-host", "a Host `NAME` (or NAME:PORT) the API answers besides localhost and IP addresses; repeatable; LASTGOOD_ALLOWED_HOSTS adds a comma-separated list")
			fs.StringVar(&o.serve.tlsCert, "tls-cert", "", "serve the API and dashboard over HTTPS with the PEM certificate `FILE` (with --tls-key)")
			fs.StringVar(&o.serve.tlsKey, "tls-key", "", "the PEM private key `FILE` of --tls-cert")
			fs.StringVar(&o.serve.metricsAuth, "metrics-auth", "auto", "whether /metrics needs a viewer token: auto (when other machines can reach the API and tokens are set), token, or open")
			fs.StringVar(&o.serve.otlp, "otlp", "", "listen `ADDR` of the OTLP/HTTP trace receiver replicas export to (default "+server.DefaultOTLP+", or an ephemeral loopback port when that is taken; off: none)")
			fs.StringVar(&o.serve.ofrep, "ofrep", "", "listen `ADDR` of the OFREP flag evaluation server (default "+ofrep.DefaultAddr+", or an ephemeral loopback port when that is taken; off: none)")
			fs.StringVar(&o.serve.ofrepTokens, "ofrep-tokens", "", "`FILE` of evaluation tokens, NAME APPS SECRET a line (docs/flags.md); required for an --ofrep other machines can reach")
			fs.Float64Var(&o.serve.ofrepRate, "ofrep-rate", server.DefaultOFREPRate, "OFREP requests a second one evaluation token (or client address) may make, in bursts of twice that (0: no limit)")
			fs.StringVar(&o.serve.ofrepAddrFile, "ofrep-addr-file", "", "write the OFREP server's URL to this `FILE` once it listens")
			fs.BoolVar(&o.serve.insecureNoAuth, "insecure-no-auth", false, "serve an API reachable from other machines without any token (anyone reaching it can run commands as this user)")
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
	cfg := server.Config{
		DataDir: o.data, API: o.apiAddr, Token: e.Getenv("LASTGOOD_TOKEN"), Version: Version, Log: log,
		AllowedHosts: o.serve.allowedHosts, TLSCert: o.serve.tlsCert, TLSKey: o.serve.tlsKey,
		MetricsAuth: o.serve.metricsAuth, InsecureNoAuth: o.serve.insecureNoAuth,
		Engine: o.engine, Kubeconfig: o.kubeconfig, Namespace: o.namespace, Reserve: int64(reserve),
		OTLP: o.serve.otlp, OFREP: o.serve.ofrep, OFREPRate: o.serve.ofrepRate,
	}
	if cfg.OFREPRate == 0 {
		cfg.OFREPRate = -1 // no limit
	}
	if o.serve.ofrepTokens != "" {
		toks, err := ofrep.LoadTokens(o.serve.ofrepTokens)
		if err != nil {
			return &exitError{ExitInvalid, err}
		}
		cfg.OFREPTokens = toks
	}
	if o.serve.ofrepAddrFile != "" {
		cfg.OFREPListening = func(url string) {
			if err := writeAtomic(o.serve.ofrepAddrFile, []byte(url+"\n")); err != nil {
				fmt.Fprintf(e.Stderr, "lastgood serve: write %s: %v\n", o.serve.ofrepAddrFile, err)
			}
		}
	}
	if cfg.OTLP == "" {
		cfg.OTLP, cfg.OTLPFallback = server.DefaultOTLP, true
	}
	if env := e.Getenv("LASTGOOD_ALLOWED_HOSTS"); env != "" {
		for _, h := range strings.Split(env, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.AllowedHosts = append(cfg.AllowedHosts, h)
			}
		}
	}
	file := o.serve.tokensFile
	if file == "" {
		file = e.Getenv("LASTGOOD_TOKENS_FILE")
	}
	if file != "" {
		toks, warnings, err := access.LoadTokens(file)
		if err != nil {
			return &exitError{ExitInvalid, err}
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		cfg.Tokens = toks
	}
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	cfg.Listening = func(addr string) {
		log.Info("lastgood serving", "api", scheme+addr, "data", o.data, "version", Version)
		if o.addrFile != "" {
			if err := writeAtomic(o.addrFile, []byte(addr+"\n")); err != nil {
				fmt.Fprintf(e.Stderr, "lastgood serve: write %s: %v\n", o.addrFile, err)
			}
		}
	}
	err := server.Run(ctx, cfg)
	if errors.Is(err, server.ErrEngineConfig) || errors.Is(err, server.ErrConfig) {
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
