package chromiumtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClickSubmitsAForm: a page's button, clicked, submits its form to
// the server, and the next page loads.
func TestClickSubmitsAForm(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			posted = append(posted, r.URL.Path+"?"+string(b)+" from "+r.Header.Get("Origin"))
			mu.Unlock()
			io.WriteString(w, "<!DOCTYPE html><title>done</title><p id=done>thanks</p>")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "c", Value: "v", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		io.WriteString(w, `<!DOCTYPE html><title>form</title><form method="post" action="/act"><input type="hidden" name="x" value="1"><button id="go" type="submit">Go</button></form>`)
	}))
	defer srv.Close()
	p := Start(t).NewPage()
	p.Navigate(srv.URL + "/")
	if !strings.Contains(p.HTML(), `<button id="go"`) {
		t.Fatalf("page: %s", p.HTML())
	}
	if cs := p.Cookies(srv.URL); len(cs) != 1 || cs[0].Name != "c" || !cs[0].HTTPOnly || cs[0].SameSite != "Strict" {
		t.Fatalf("cookies %+v", cs)
	}
	p.Click("#go")
	p.WaitFor("the answer page", `document.getElementById("done") !== null`, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(posted) != 1 || posted[0] != "/act?x=1 from "+srv.URL {
		t.Fatalf("posted %v", posted)
	}
}

func TestRunDumpsTheDOM(t *testing.T) {
	dom := string(Run(t, t.TempDir(), "--dump-dom", "data:text/html,<p>hello</p>"))
	if !strings.Contains(dom, "<p>hello</p>") {
		t.Fatalf("dom %q", dom)
	}
}

// TestClickStopsTheRefresh: a page that reloads itself every second is
// not reloaded once Click has found its element, so the click lands on
// the page it aimed at.
func TestClickStopsTheRefresh(t *testing.T) {
	var mu sync.Mutex
	loads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" { // the favicon
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		loads++
		mu.Unlock()
		io.WriteString(w, `<!DOCTYPE html><meta http-equiv="refresh" content="1"><button id="b" type="button" onclick="window.hit = true">b</button>`)
	}))
	defer srv.Close()
	p := Start(t).NewPage()
	p.Navigate(srv.URL + "/")
	p.Click("#b")
	p.WaitFor("the click", "window.hit === true", 10*time.Second)
	time.Sleep(2500 * time.Millisecond)
	var hit bool
	p.Eval("window.hit === true", &hit)
	mu.Lock()
	defer mu.Unlock()
	if !hit || loads != 1 {
		t.Fatalf("hit %v, %d loads: the refresh was not stopped", hit, loads)
	}
}
