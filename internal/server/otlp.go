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

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/signal/otlp"
)

// DefaultOTLP is the address of the OTLP/HTTP receiver unless --otlp says
// otherwise: the port OpenTelemetry SDKs use by default, on loopback.
const DefaultOTLP = "127.0.0.1:4318"

// traces is lastgood's OTLP/HTTP receiver and its listener.
type traces struct {
	recv *otlp.Receiver
	ln   net.Listener
	url  string // http://host:port, what replicas get as OTEL_EXPORTER_OTLP_ENDPOINT
}

// listenOTLP opens the receiver's address. When fallback is set (the
// address is the default, not one the user asked for) and it is taken —
// another lastgood, or a collector — it listens on an ephemeral loopback
// port instead and says so: replicas are given the address it got, so
// nothing depends on the port. Address "off" runs no receiver.
func listenOTLP(addr string, fallback bool, log *slog.Logger) (*traces, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback && errors.Is(err, syscall.EADDRINUSE) {
		log.Info("the OTLP address is taken; listening on an ephemeral port instead", "wanted", addr)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, configError{fmt.Errorf("--otlp: %w", err)}
	}
	return &traces{ln: ln, url: "http://" + ln.Addr().String()}, nil
}

// serve runs the receiver until ctx ends.
func (t *traces) serve(ctx context.Context, log *slog.Logger) error {
	srv := &http.Server{Handler: t.recv, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("lastgood receiving traces", "otlp", t.url+otlp.TracesPath)
	return srv.Serve(t.ln)
}

// running returns the receiver's Known: an app's revision with a replica
// (any state) on the engine.
func running(eng controller.Engine) func(app string, rev int) bool {
	return func(app string, rev int) bool {
		for _, r := range eng.Replicas(app) {
			if r.Revision == rev {
				return true
			}
		}
		return false
	}
}

// aggregate is the controller's Traces: nil without a receiver.
func (t *traces) aggregate(app string, rev int) (otlp.Aggregate, bool) {
	if t == nil || t.recv == nil {
		return otlp.Aggregate{}, false
	}
	return t.recv.Aggregate(otlp.Key{App: app, Revision: rev})
}

// samples is the incident recorder's Traces: nil without a receiver.
func (t *traces) samples(app string, rev, stable int) []otlp.TraceSample {
	if t == nil || t.recv == nil {
		return nil
	}
	return t.recv.TraceSamples(app, rev, stable)
}
