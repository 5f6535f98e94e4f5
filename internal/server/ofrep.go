package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/internal/access"
	"github.com/lastgood/lastgood/internal/ofrep"
	"github.com/lastgood/lastgood/internal/store"
)

// flagServer is the OFREP listener and its server.
type flagServer struct {
	ln  net.Listener
	srv *ofrep.Server
	url string
}

// listenOFREP opens the OFREP address; nil for "off". Without evaluation
// tokens it must be a loopback address.
func listenOFREP(cfg Config, apiTokens *access.Tokens, st *store.Store) (*flagServer, error) {
	addr := cfg.OFREP
	if addr == "off" {
		return nil, nil
	}
	fallback := cfg.OFREPFallback
	if addr == "" {
		addr, fallback = ofrep.DefaultAddr, true
	}
	for _, secret := range cfg.OFREPTokens.Plain() {
		if tok, ok := apiTokens.Lookup(secret); ok {
			return nil, configError{fmt.Errorf("--ofrep-tokens: a secret is also the API token %s; evaluation tokens must be their own (they are sent by every app that reads flags)", tok.Name)}
		}
	}
	if Exposed(addr) && cfg.OFREPTokens.Len() == 0 {
		return nil, configError{fmt.Errorf("--ofrep %s can be reached from other machines and no evaluation token is set: give --ofrep-tokens FILE (docs/flags.md), or listen on 127.0.0.1", addr)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback && errors.Is(err, syscall.EADDRINUSE) {
		cfg.Log.Info("the OFREP address is taken; listening on an ephemeral port instead", "wanted", addr)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, configError{fmt.Errorf("--ofrep: %w", err)}
	}
	rate := cfg.OFREPRate
	if rate == 0 {
		rate = DefaultOFREPRate
	}
	if rate < 0 {
		rate = 0
	}
	srv := ofrep.New(ofrep.Config{Store: st, Tokens: cfg.OFREPTokens, Rate: rate, Burst: int(2 * rate), Log: cfg.Log})
	return &flagServer{ln: ln, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// DefaultOFREPRate is how many OFREP requests a second one evaluation
// token (or one client address) may make unless --ofrep-rate says.
const DefaultOFREPRate = 2000

// serve answers OFREP until ctx ends.
func (f *flagServer) serve(ctx context.Context, log *slog.Logger, listening func(string)) error {
	if err := f.srv.Load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while loading: a shutdown, not a failure
		}
		return err
	}
	go f.srv.Run(ctx)
	srv := &http.Server{Handler: f.srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("lastgood serving flags over OFREP", "ofrep", f.url+"/ofrep/v1/evaluate/flags")
	if listening != nil {
		listening(f.url)
	}
	return srv.Serve(f.ln)
}
