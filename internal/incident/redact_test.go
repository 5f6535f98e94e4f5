package incident

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab12", 16)
	tests := []struct{ in, want string }{
		{"Authorization: Bearer abc.DEF-123_xyz", "Authorization: Bearer " + Redacted},
		{"key AKIAIOSFODNN7EXAMPLE here", "key " + Redacted + " here"},
		{"password=hunter2 user=bob", "password=" + Redacted + " user=bob"},
		{`{"api_key": "k-123"}`, `{"api_key": "` + Redacted + `"}`},
		{"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- after", Redacted + " after"},
		{"hex " + strings.Repeat("0f", 20), "hex " + Redacted},
		{"artifact " + digest + " stored", "artifact " + digest + " stored"},
		{"opened /var/lib/lastgood/logs/web/2/web-2-0.log", "opened /var/lib/lastgood/logs/web/2/web-2-0.log"},
		{"check errors failed: error rate 20.0% > 1.0% (p=0.0001)", "check errors failed: error rate 20.0% > 1.0% (p=0.0001)"},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestJSONRedactsStringsAndSecretFields(t *testing.T) {
	in := json.RawMessage(`{"check":"errors","reason":"Bearer abcdefgh12345678","n":0.25,"headers":{"X-Api-Token":"plain"},"list":["password: x1"]}`)
	var got map[string]any
	if err := json.Unmarshal(JSON(in), &got); err != nil {
		t.Fatal(err)
	}
	if got["check"] != "errors" || got["n"] != 0.25 {
		t.Errorf("plain fields changed: %v", got)
	}
	if got["reason"] != "Bearer "+Redacted || got["headers"].(map[string]any)["X-Api-Token"] != Redacted ||
		got["list"].([]any)[0] != "password: "+Redacted {
		t.Errorf("JSON = %v", got)
	}
}
