package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// ofrep URLFILE KEY BODY: POST BODY to the OFREP single-flag evaluation of
// KEY at the URL `lastgood serve --ofrep-addr-file` wrote to URLFILE
// (waiting for the file), and print "STATUS BODY" to stdout. For scripts
// that evaluate flags as an OpenFeature client would.
func cmdOFREP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: ofrep URLFILE KEY BODY")
	}
	file := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	var base []byte
	for {
		b, err := os.ReadFile(file)
		if err == nil && len(b) > 0 {
			base = b
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s was not written", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	url := strings.TrimSpace(string(base)) + "/ofrep/v1/evaluate/flags/" + args[1]
	res, err := http.Post(url, "application/json", strings.NewReader(args[2]))
	if err != nil {
		ts.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Fprintf(ts.Stdout(), "%d %s", res.StatusCode, body)
}
