package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// series returns samples every 5 s over total of f(t), with a sawtooth of
// ±noise on top (a heap between collections).
func series(total time.Duration, noise float64, f func(time.Duration) float64) []point {
	var ps []point
	for t, i := time.Duration(0), 0; t <= total; t, i = t+5*time.Second, i+1 {
		ps = append(ps, point{At: t, V: f(t) + noise*float64(i%6-3)/3})
	}
	return ps
}

func TestJudgeFlat(t *testing.T) {
	const mib = 1 << 20
	total, warmup, span := 30*time.Minute, 2*time.Minute, 5*time.Minute
	tol := tolerance{Share: 0.10, Floor: 4 * mib}

	flat := judgeFlat("RSS", "bytes", series(total, 3*mib, func(time.Duration) float64 { return 40 * mib }), total, warmup, span, tol)
	if !flat.Flat {
		t.Errorf("a constant RSS with a sawtooth was judged not flat: %s", flat.Why)
	}
	if flat.Lo > 0 || flat.Hi < 0 {
		t.Errorf("a constant series has slope interval [%g, %g], want it to hold 0", flat.Lo, flat.Hi)
	}
	if flat.NEarly != 60 || flat.NLate != 61 {
		t.Errorf("stretch sizes %d and %d, want 60 and 61 (5 min of 5 s samples; the last inclusive)", flat.NEarly, flat.NLate)
	}

	// 1 MiB a minute: 28 MiB over the measured 28 minutes
	leak := judgeFlat("RSS", "bytes", series(total, 3*mib, func(d time.Duration) float64 { return 40*mib + d.Minutes()*mib }), total, warmup, span, tol)
	if leak.Flat {
		t.Errorf("an RSS growing 1 MiB/min was judged flat: %s", leak.Why)
	}
	if got := leak.Slope / mib; math.Abs(got-60) > 3 {
		t.Errorf("slope %.2f MiB/h, want 60 ± 3 (per-minute medians of a sawtooth)", got)
	}
	if !(leak.Lo < leak.Slope && leak.Slope < leak.Hi) {
		t.Errorf("interval [%g, %g] does not hold the slope %g", leak.Lo, leak.Hi, leak.Slope)
	}

	// growth only during warm-up is not judged
	warm := judgeFlat("fds", "", series(total, 0, func(d time.Duration) float64 {
		if d < warmup {
			return 10 + d.Seconds()
		}
		return 130
	}), total, warmup, span, tolerance{Share: 0.1, Floor: 4})
	if !warm.Flat || warm.Early != 130 || warm.Late != 130 {
		t.Errorf("growth inside the warm-up only: flat %v, early %g, late %g; want flat at 130", warm.Flat, warm.Early, warm.Late)
	}

	// a short run compares shorter stretches, and says so
	short := judgeFlat("fds", "", series(5*time.Minute, 0, func(time.Duration) float64 { return 20 }), 5*time.Minute, warmup, span, tolerance{Floor: 4})
	if short.Span != time.Minute || len(short.Warnings) == 0 {
		t.Errorf("a 5 min run: span %s, warnings %q; want 1m and a warning", short.Span, short.Warnings)
	}
}

func TestTQuantile(t *testing.T) {
	// exact values from a t table
	for df, want := range map[int]float64{1: 12.706, 4: 2.776, 7: 2.365, 10: 2.228, 26: 2.056, 100: 1.984} {
		if got := tQuantile975(df); math.Abs(got-want) > 0.003 {
			t.Errorf("t(0.975, %d) = %.4f, want %.3f", df, got, want)
		}
	}
}

func TestWriteSVGIsWellFormed(t *testing.T) {
	var b bytes.Buffer
	ps := series(10*time.Minute, 2, func(d time.Duration) float64 { return 100 + d.Minutes() })
	err := writeSVG(&b, `soak <rate> & "fds"`, 10*time.Minute, 2*time.Minute,
		[]panel{{Title: "RSS & more", Scale: 1, Points: ps}, {Title: "empty", Scale: 1}},
		[]mark{{At: time.Minute}, {At: 2 * time.Minute, Bad: true}})
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	var root string
	lines, polylines := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Space + " " + se.Name.Local
			}
			switch se.Name.Local {
			case "line":
				lines++
			case "polyline":
				polylines++
				for _, a := range se.Attr {
					if a.Name.Local == "points" && len(strings.Fields(a.Value)) != len(ps) {
						t.Errorf("polyline has %d points, want %d", len(strings.Fields(a.Value)), len(ps))
					}
				}
			}
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("root element %q, want svg in the SVG namespace", root)
	}
	if lines != 4 || polylines != 1 {
		t.Errorf("%d mark lines and %d polylines, want 4 (2 marks × 2 panels) and 1 (the empty panel has none)", lines, polylines)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP lastgood_requests_total x
# TYPE lastgood_requests_total counter
lastgood_requests_total{app="web",code="2xx",revision="3"} 10
lastgood_requests_total{app="web",code="5xx",revision="4"} 1
lastgood_traffic_weight{app="web",revision="4"} 100
go_goroutines 42
`
	g, series, revs := parseMetrics(strings.NewReader(text))
	if g != 42 || series != 4 || revs != 2 {
		t.Errorf("parseMetrics = %d goroutines, %d lines, %d revisions; want 42, 4, 2", g, series, revs)
	}
	if g, _, _ := parseMetrics(strings.NewReader("lastgood_x 1\n")); g != -1 {
		t.Errorf("no go_goroutines: got %d, want -1", g)
	}
}

func TestJudgeBound(t *testing.T) {
	ps := series(10*time.Minute, 0, func(d time.Duration) float64 { return min(2+d.Minutes(), 6) })
	if f := judgeBound("log folders", "", ps, time.Minute, 6); !f.Flat || f.Peak != 6 {
		t.Errorf("growing to the bound 6: flat %v, peak %g; want flat at 6", f.Flat, f.Peak)
	}
	if f := judgeBound("log folders", "", ps, time.Minute, 5); f.Flat {
		t.Errorf("reaching 6 with a bound of 5 was judged within it: %s", f.Why)
	}
}
