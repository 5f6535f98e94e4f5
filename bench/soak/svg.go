package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"time"
)

// panel is one measure drawn over time.
type panel struct {
	Title string
	// Scale divides the values for the axis labels (1<<20 for MiB).
	Scale  float64
	Points []point
}

// mark is a moment drawn across every panel: a release applied.
type mark struct {
	At  time.Duration
	Bad bool // a bad release (expected to be rolled back)
}

// plot geometry, in SVG user units
const (
	plotWidth   = 900
	panelHeight = 170
	marginLeft  = 70
	marginRight = 20
	marginTop   = 40
	panelGap    = 50
)

// writeSVG draws panels one above the other over [0, total], the warm-up
// shaded and every mark a vertical line (green a good release, red a bad
// one), as a self-contained SVG document.
func writeSVG(w io.Writer, title string, total, warmup time.Duration, panels []panel, marks []mark) error {
	var b bytes.Buffer
	height := marginTop + len(panels)*(panelHeight+panelGap) + 10
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">
<rect width="100%%" height="100%%" fill="white"/>
<text x="%d" y="20" font-size="14">%s</text>
`, plotWidth, height, plotWidth, height, marginLeft, esc(title))
	innerW := float64(plotWidth - marginLeft - marginRight)
	xOf := func(d time.Duration) float64 {
		if total <= 0 {
			return marginLeft
		}
		return marginLeft + innerW*float64(d)/float64(total)
	}
	for i, p := range panels {
		top := float64(marginTop + i*(panelHeight+panelGap) + 15)
		bottom := top + panelHeight
		lo, hi := valueRange(p.Points)
		yOf := func(v float64) float64 { return bottom - (v-lo)/(hi-lo)*panelHeight }
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="12">%s</text>
`, marginLeft, top-6, esc(p.Title))
		if warmup > 0 {
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="#eee"/>
`, marginLeft, top, xOf(min(warmup, total))-marginLeft, panelHeight)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#999"/>
`, marginLeft, top, innerW, panelHeight)
		for _, m := range marks {
			color := "#6c6"
			if m.Bad {
				color = "#d44"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>
`, xOf(m.At), top, xOf(m.At), bottom, color)
		}
		// y axis: bottom, middle and top values
		for _, v := range []float64{lo, (lo + hi) / 2, hi} {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>
`, marginLeft-5, yOf(v)+4, esc(axisLabel(v/p.Scale)))
		}
		// x axis: every 5 minutes (every minute for short runs)
		step := 5 * time.Minute
		if total < 10*time.Minute {
			step = time.Minute
		}
		for t := time.Duration(0); t <= total && step > 0; t += step {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%dm</text>
`, xOf(t), bottom+14, int(t.Minutes()))
		}
		if len(p.Points) > 0 {
			b.WriteString(`<polyline fill="none" stroke="#226" stroke-width="1.5" points="`)
			for j, pt := range p.Points {
				if j > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", xOf(pt.At), yOf(pt.V))
			}
			b.WriteString("\"/>\n")
		}
	}
	legendY := height - 8
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">grey: warm-up (not judged) · green line: a good release applied · red line: a bad release applied (rolled back)</text>
</svg>
`, marginLeft, legendY)
	_, err := w.Write(b.Bytes())
	return err
}

// valueRange returns a range holding every value with some room, never
// empty (a flat line is drawn in the middle).
func valueRange(ps []point) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		lo, hi = min(lo, p.V), max(hi, p.V)
	}
	if len(ps) == 0 {
		return 0, 1
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Max(math.Abs(hi)*0.1, 1)
	}
	return math.Max(0, lo-pad), hi + pad
}

func axisLabel(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// esc escapes s for XML text.
func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
