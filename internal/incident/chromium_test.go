package incident

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/chromiumtest"
)

// TestHTMLRendersInChromium opens the post-mortem page in headless Chromium
// (Debian package chromium; scripts/test.sh installs it) and checks that the
// page parses and that its charts are drawn: the failed revision's red line
// and the restored revision's blue one are in the screenshot.
func TestHTMLRendersInChromium(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	run := func(args ...string) []byte { return chromiumtest.Run(t, dir, args...) }
	dom := string(run("--dump-dom", "file://"+page))
	for _, want := range []string{"<h1>Incident web-4</h1>", "<polyline", "fail (deciding)"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered DOM lacks %q", want)
		}
	}
	run("--window-size=1000,1400", "--hide-scrollbars", "--screenshot="+shot, "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if red, blue := count(img, 0xcc, 0, 0), count(img, 0, 0x66, 0xcc); red < 50 || blue < 50 {
		t.Fatalf("the charts' lines are not drawn: %d red and %d blue pixels", red, blue)
	}
}

// count returns how many pixels of img are close to the color r, g, b.
func count(img image.Image, r, g, b uint32) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr>>8, r) && near(pg>>8, g) && near(pb>>8, b) {
				n++
			}
		}
	}
	return n
}

func near(a, b uint32) bool { return a+24 >= b && a <= b+24 }
