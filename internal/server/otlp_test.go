package server

import (
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestOtelEnvNamesTheRevisionAndKeepsTheUsers(t *testing.T) {
	got := otelEnv(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "team=search,service.version=9,lastgood.revision=9",
		"OTEL_SERVICE_NAME":        "helper",
	}, "http://127.0.0.1:4318", "agent", 3)
	want := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME":           "helper",
		"OTEL_RESOURCE_ATTRIBUTES":    "team=search,lastgood.app=agent,lastgood.revision=3,service.version=3",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	own := otelEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://127.0.0.1:4318", "agent", 1)
	if own["OTEL_EXPORTER_OTLP_ENDPOINT"] != "http://collector:4318" || own["OTEL_SERVICE_NAME"] != "agent" {
		t.Errorf("the user's endpoint was not kept: %v", own)
	}
	if off := otelEnv(map[string]string{"A": "1"}, "", "agent", 1); len(off) != 1 {
		t.Errorf("without a receiver the environment changed: %v", off)
	}
}

func TestListenOTLPFallsBackOnlyForTheDefault(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	if _, err := listenOTLP(addr, false, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--otlp") {
		t.Fatalf("an asked-for address that is taken: %v", err)
	}
	tr, err := listenOTLP(addr, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.ln.Close()
	if tr.url == "http://"+addr || !strings.HasPrefix(tr.url, "http://127.0.0.1:") {
		t.Errorf("fallback url %q", tr.url)
	}
	if tr, err := listenOTLP("off", false, nil); tr != nil || err != nil {
		t.Errorf("off: %v %v", tr, err)
	}
}
