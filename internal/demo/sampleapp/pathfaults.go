package main

import (
	"fmt"
	"net/http"
	"strings"
)

// pathFaults are the faults of some pages only, or of every page's
// status, read from FAULT_FAIL_PATH and FAULT_NOT_FOUND: the harm that a
// pooled error rate does not show.
type pathFaults struct {
	failPrefix string // requests whose path starts with it answer 500
	notFound   bool   // every page answers 404
}

func parsePathFaults(getenv func(string) string) pathFaults {
	return pathFaults{failPrefix: getenv("FAULT_FAIL_PATH"), notFound: getenv("FAULT_NOT_FOUND") == "1"}
}

// wrap applies the faults in front of h; the probes' paths are spared.
func (p pathFaults) wrap(h http.Handler) http.Handler {
	if p.failPrefix == "" && !p.notFound {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/livez" {
			h.ServeHTTP(w, r)
			return
		}
		if p.failPrefix != "" && strings.HasPrefix(r.URL.Path, p.failPrefix) {
			http.Error(w, "simulated failure (FAULT_FAIL_PATH)", http.StatusInternalServerError)
			return
		}
		if p.notFound {
			http.Error(w, "simulated 404 (FAULT_NOT_FOUND)", http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// item answers GET /items/{id}: a second page, so that traffic has routes.
func item(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "item %s\n", r.PathValue("id"))
}
