package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

func TestBreaches(t *testing.T) {
	ms := func(v int64) *int64 { return &v }
	slo := &manifest.SLO{TimeToDetect: manifest.Duration(30 * time.Second), TimeToRollback: manifest.Duration(time.Second)}
	for _, tc := range []struct {
		name   string
		inc    Incident
		slo    *manifest.SLO
		breach []string
	}{
		{"within", Incident{Figures: Figures{TimeToDetectMs: ms(29000), TimeToRollbackMs: ms(1000)}}, slo, nil},
		{"slow detection", Incident{Figures: Figures{TimeToDetectMs: ms(31000), TimeToRollbackMs: ms(5)}}, slo, []string{"timeToDetect"}},
		{"both", Incident{Figures: Figures{TimeToDetectMs: ms(31000), TimeToRollbackMs: ms(1001)}}, slo, []string{"timeToDetect", "timeToRollback"}},
		{"unknown figures", Incident{}, slo, nil},
		{"no slo", Incident{Figures: Figures{TimeToDetectMs: ms(99000)}}, nil, nil},
		{"manual", Incident{Manual: true, Figures: Figures{TimeToDetectMs: ms(99000)}}, slo, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.inc.ID, tc.inc.To = "web-3", 3
			got, msg := breaches(&tc.inc, tc.slo)
			if strings.Join(got, ",") != strings.Join(tc.breach, ",") {
				t.Fatalf("breaches %v, want %v", got, tc.breach)
			}
			if len(got) > 0 && !strings.Contains(msg, "breached its SLO") {
				t.Errorf("message %q", msg)
			}
		})
	}
}
