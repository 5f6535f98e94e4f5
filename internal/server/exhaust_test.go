//go:build linux

package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/lastgood/lastgood/internal/api"
)

// limitFiles sets the open-file limit (soft and hard) of process pid.
func limitFiles(t *testing.T, pid int, n uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: n, Max: n}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_NOFILE,
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("prlimit: %v", errno)
	}
}

// TestSlowClientsOfOneAppDoNotStarveAnother: thousands of connections to
// one app, each announcing a large body and sending one byte, would take
// more files than lastgood may open; the app's connection cap (its share
// of the files) refuses the excess, and another app keeps answering.
func TestSlowClientsOfOneAppDoNotStarveAnother(t *testing.T) {
	data := t.TempDir()
	cmd, addr := startChild(t, data)
	// 1200 files: a quarter of what is left after the reserve is 236
	// connections per app; 2000 slow connections, each with its upload to
	// the replica, would take 4000.
	limitFiles(t, cmd.Process.Pid, 1200)
	in := &instance{c: &api.Client{Base: "http://" + addr}, dir: data}
	attacked, other := newApp(t, "attacked"), newApp(t, "other")
	// Probes as a user would write them: the helper's 100ms ones fail on
	// a machine this busy, which is not what this test is about.
	for _, a := range []*app{attacked, other} {
		path := a.manifest(t, 1, "blueGreen: {}", "")
		rewrite(t, path, "period: 100ms, failureThreshold: 2", "period: 1s, failureThreshold: 3")
		in.applyWait(t, path)
	}

	const slow = 2000
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range slow {
		c, err := net.Dial("tcp", attacked.listen)
		if err != nil {
			t.Fatalf("dial %s after %d connections: %v", attacked.listen, len(conns), err)
		}
		conns = append(conns, c)
		c.Write([]byte("POST /upload HTTP/1.1\r\nHost: attacked\r\nContent-Length: 100000000\r\n\r\nx"))
	}
	// The other app answers every request while they are held.
	for i := range 100 {
		res, err := http.Get("http://" + other.listen + "/")
		if err != nil {
			t.Fatalf("request %d to the other app: %v", i, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Lastgood-Revision") != "1" {
			t.Fatalf("request %d to the other app: %s %q", i, res.Status, body)
		}
	}
	// The last connections were beyond the cap: answered 503.
	last := conns[len(conns)-1]
	last.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(last), nil)
	if err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection %d to the attacked app: %v %v, want 503 (too many connections)", slow, res, err)
	}
	// And the attacked app itself serves again once they are gone.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitFor(t, 30*time.Second, "the attacked app to answer again", func() bool {
		rev, err := revisionAt(attacked.listen)
		return err == nil && rev == 1
	})
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/limits"); !strings.Contains(string(b), "Max open files            1200") {
		t.Errorf("the child's limit was not lowered:\n%s", b)
	}
}
