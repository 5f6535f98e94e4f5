package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Helper modes of the test binary. Each runs as a real process: a replica
// with a behaviour sampleapp does not have, or a "mini lastgood" that owns
// an engine and can be killed with SIGKILL.
const (
	modeMiniLastgood  = "mini-lastgood"    // engine over LG_DATA, LG_N replicas of LG_CMD (JSON argv); prints "PIDS ..."
	modeGrandparent   = "spawn-grandchild" // starts a grandchild in its own group, writes its pid to GRANDCHILD_PID_FILE, serves TCP
	modeSleep         = "sleep"            // sleeps
	modeIgnoreTerm    = "ignore-term"      // ignores SIGTERM, serves TCP on PORT
	modeHealthFile    = "health-file"      // HTTP on PORT; /healthz is 200 while HEALTH_FILE ({port} replaced) exists
	modeChatty        = "chatty"           // writes CHATTY_LINES numbered lines, then serves TCP
	modeListenArg     = "listen-arg"       // listens on os.Args[1]; prints its arguments
	helperSleepPeriod = 10 * time.Minute
)

func helperMain(mode string) int {
	switch mode {
	case modeMiniLastgood:
		return miniLastgood()
	case modeGrandparent:
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), helperEnv+"="+modeSleep)
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(os.Getenv("GRANDCHILD_PID_FILE"), []byte(strconv.Itoa(gc.Process.Pid)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return serveTCP(net.JoinHostPort("127.0.0.1", os.Getenv("PORT")))
	case modeSleep:
		time.Sleep(helperSleepPeriod)
		return 0
	case modeIgnoreTerm:
		signal.Ignore(syscall.SIGTERM)
		return serveTCP(net.JoinHostPort("127.0.0.1", os.Getenv("PORT")))
	case modeHealthFile:
		return serveHealthFile()
	case modeChatty:
		n, _ := strconv.Atoi(os.Getenv("CHATTY_LINES"))
		for i := range n {
			fmt.Printf("line %06d %s\n", i, strings.Repeat("x", 80))
		}
		return serveTCP(net.JoinHostPort("127.0.0.1", os.Getenv("PORT")))
	case modeListenArg:
		fmt.Println("args:", strings.Join(os.Args[1:], " "))
		return serveTCP(os.Args[1])
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// serveTCP accepts and closes connections on addr for helperSleepPeriod.
func serveTCP(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	time.Sleep(helperSleepPeriod)
	return 0
}

func serveHealthFile() int {
	healthFile := strings.ReplaceAll(os.Getenv("HEALTH_FILE"), "{port}", os.Getenv("PORT"))
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(healthFile); err != nil {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", os.Getenv("PORT")), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// miniLastgood is a stand-in for lastgood: it starts an engine and LG_N
// replicas, prints their pids, and waits to be killed.
func miniLastgood() int {
	var argv []string
	if err := json.Unmarshal([]byte(os.Getenv("LG_CMD")), &argv); err != nil {
		fmt.Fprintln(os.Stderr, "LG_CMD:", err)
		return 2
	}
	n, _ := strconv.Atoi(os.Getenv("LG_N"))
	e, err := New(Config{DataDir: os.Getenv("LG_DATA")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	spec := Spec{App: "mini", Revision: 1, Command: argv, Env: map[string]string{helperEnv: os.Getenv("LG_REPLICA_MODE")}}
	if err := e.Scale(ctx, spec, n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		var pids []string
		for _, r := range e.Replicas("mini") {
			if r.PID > 0 {
				pids = append(pids, strconv.Itoa(r.PID))
			}
		}
		if len(pids) == n {
			fmt.Println("PIDS " + strings.Join(pids, " "))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(helperSleepPeriod)
	return 0
}
