// Package chromiumtest drives headless Chromium (the Debian package
// chromium; scripts/test.sh installs it) for tests: Run for one-shot
// commands (--dump-dom, --screenshot), and Start for a browser the test
// steers over the DevTools protocol — open pages, read them, click like a
// person. Every browser gets a new empty profile and stops with its test.
// It is imported by tests only.
package chromiumtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Binary returns the path of chromium, failing the test when it is not
// installed.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("headless Chromium is needed (scripts/need.sh chromium chromium installs the Debian package): %v", err)
	}
	return bin
}

// flags start Chromium headless with a profile of its own and without
// reaching for the internet.
func flags(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile}
}

// Run runs Chromium once with args (a URL last) and returns its stdout.
// dir holds its profile.
func Run(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), append(flags(filepath.Join(dir, "profile")), args...)...)
	ownGroup(cmd)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// Browser is a running headless Chromium steered over the DevTools
// protocol.
type Browser struct {
	t    testing.TB
	conn *websocket.Conn
	ctx  context.Context

	mu      sync.Mutex
	next    int64
	waiting map[int64]chan reply
	events  map[string][]chan event // by session id
}

type reply struct {
	Result json.RawMessage
	Err    error
}

type event struct {
	Method string
	Params json.RawMessage
}

// Start runs a browser for the test, stopped (and its profile removed)
// when the test ends, with extra flags (--host-resolver-rules=…).
func Start(t testing.TB, extra ...string) *Browser {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, Binary(t), append(append(flags(profile), extra...), "--remote-debugging-port=0", "--window-size=1200,1600", "about:blank")...)
	ownGroup(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ws := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "DevTools listening on "); ok {
				ws <- u
			}
		}
	}()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cancel() // kills the process group, if Chromium is still there
		<-exited
	}
	var url string
	select {
	case url = <-ws:
	case <-time.After(60 * time.Second):
		stop()
		t.Fatal("chromium did not open its DevTools port within 60s")
	}
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		stop()
		t.Fatalf("connect to chromium at %s: %v", url, err)
	}
	conn.SetReadLimit(64 << 20)
	b := &Browser{t: t, conn: conn, ctx: ctx, waiting: map[int64]chan reply{}, events: map[string][]chan event{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.read()
	}()
	t.Cleanup(func() {
		// Ask Chromium to close, so that its helper processes are gone
		// before the test removes the profile they write to.
		b.call("", "Browser.close", map[string]any{}, nil)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		conn.Close(websocket.StatusNormalClosure, "")
		stop()
		<-done
	})
	return b
}

// ownGroup runs cmd in a process group of its own that is killed whole
// when its context ends, so no Chromium helper outlives the test.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

// read hands every message to the call or the page waiting for it, until
// the connection closes.
func (b *Browser) read() {
	for {
		_, data, err := b.conn.Read(b.ctx)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				ch <- reply{Err: fmt.Errorf("connection to chromium: %w", err)}
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var msg struct {
			ID        int64           `json:"id"`
			Method    string          `json:"method"`
			Params    json.RawMessage `json:"params"`
			Result    json.RawMessage `json:"result"`
			SessionID string          `json:"sessionId"`
			Error     *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		b.mu.Lock()
		if msg.ID != 0 {
			if ch, ok := b.waiting[msg.ID]; ok {
				r := reply{Result: msg.Result}
				if msg.Error != nil {
					r.Err = fmt.Errorf("%s", msg.Error.Message)
				}
				ch <- r
				delete(b.waiting, msg.ID)
			}
		} else {
			for _, ch := range b.events[msg.SessionID] {
				select {
				case ch <- event{msg.Method, msg.Params}:
				default: // a page that does not listen misses it
				}
			}
		}
		b.mu.Unlock()
	}
}

// call sends one DevTools command (to a page's session, or to the browser
// when session is "") and decodes its result into out.
func (b *Browser) call(session, method string, params, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan reply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return fmt.Errorf("%s: %w", method, r.Err)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer from chromium: %w", method, ctx.Err())
	}
}

// Page is one tab.
type Page struct {
	b       *Browser
	session string
	events  chan event
}

// NewPage opens a blank tab.
func (b *Browser) NewPage() *Page {
	b.t.Helper()
	var target struct{ TargetID string }
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.t.Fatal(err)
	}
	var att struct{ SessionID string }
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		b.t.Fatal(err)
	}
	p := &Page{b: b, session: att.SessionID, events: make(chan event, 256)}
	b.mu.Lock()
	b.events[att.SessionID] = append(b.events[att.SessionID], p.events)
	b.mu.Unlock()
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := b.call(p.session, m, map[string]any{}, nil); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.call(p.session, "Page.setLifecycleEventsEnabled", map[string]any{"enabled": true}, nil); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Navigate opens url and waits until that document (not one loading
// before it) has loaded.
func (p *Page) Navigate(url string) {
	p.b.t.Helper()
	p.drain()
	var res struct{ LoaderID, ErrorText string }
	if err := p.b.call(p.session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		p.b.t.Fatal(err)
	}
	if res.ErrorText != "" {
		p.b.t.Fatalf("navigate to %s: %s", url, res.ErrorText)
	}
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-p.events:
			var lc struct{ LoaderID, Name string }
			if e.Method == "Page.lifecycleEvent" && json.Unmarshal(e.Params, &lc) == nil && lc.Name == "load" && lc.LoaderID == res.LoaderID {
				return
			}
		case <-deadline:
			p.b.t.Fatalf("%s did not load within 60s", url)
		}
	}
}

// drain forgets the events seen so far.
func (p *Page) drain() {
	for {
		select {
		case <-p.events:
		default:
			return
		}
	}
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value into out.
func (p *Page) Eval(expr string, out any) {
	p.b.t.Helper()
	if err := p.eval(expr, out); err != nil {
		p.b.t.Fatal(err)
	}
}

func (p *Page) eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluate %s: %s", expr, res.ExceptionDetails.Text)
	}
	if out != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			return fmt.Errorf("evaluate %s: %v", expr, err)
		}
	}
	return nil
}

// HTML returns the page's document as it stands (once it has one: a
// page reloading itself has none for a moment).
func (p *Page) HTML() string {
	p.b.t.Helper()
	var s string
	p.WaitFor("a document", `document.readyState === "complete"`, 30*time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := p.eval("document.documentElement.outerHTML", &s)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			p.b.t.Fatal(err)
		}
	}
}

// Click presses and releases the left mouse button at the middle of the
// first element that selector finds, as a person's click: the browser
// does the rest (a submit button submits its form). It first stops the
// page's loading, which cancels a pending <meta http-equiv="refresh">, so
// the page cannot reload under the pointer between finding the element
// and clicking it.
func (p *Page) Click(selector string) {
	p.b.t.Helper()
	var box struct{ X, Y float64 }
	sel, _ := json.Marshal(selector)
	p.Eval(`(() => { window.stop(); const e = document.querySelector(`+string(sel)+`); if (!e) return {X: -1, Y: -1};
		e.scrollIntoView({block: "center"}); const r = e.getBoundingClientRect();
		return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`, &box)
	if box.X < 0 {
		p.b.t.Fatalf("click: nothing matches %s in\n%s", selector, p.HTML())
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		params := map[string]any{"type": typ, "x": box.X, "y": box.Y}
		if typ != "mouseMoved" {
			params["button"], params["clickCount"] = "left", 1
		}
		if err := p.b.call(p.session, "Input.dispatchMouseEvent", params, nil); err != nil {
			p.b.t.Fatal(err)
		}
	}
}

// WaitFor evaluates a boolean JavaScript expression until it is true. A
// page that is navigating has no document to evaluate in for a moment;
// that is waited through too.
func (p *Page) WaitFor(what, expr string, within time.Duration) {
	p.b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var ok bool
		err := p.eval(expr, &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.b.t.Fatalf("timed out after %s waiting for %s (last: %v)", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cookies returns the browser's cookies for url.
func (p *Page) Cookies(url string) []Cookie {
	p.b.t.Helper()
	var res struct{ Cookies []Cookie }
	if err := p.b.call(p.session, "Network.getCookies", map[string]any{"urls": []string{url}}, &res); err != nil {
		p.b.t.Fatal(err)
	}
	return res.Cookies
}

// Cookie is one of the browser's cookies, as DevTools reports it.
type Cookie struct {
	Name, Value, SameSite string
	HTTPOnly              bool `json:"httpOnly"`
}
