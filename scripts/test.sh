#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it
# is absent, then checks formatting, vets, and runs every Go test with the
# race detector. Usage: scripts/test.sh  (or: make test)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

log() { printf '\n== %s\n' "$*"; }

# --- what the tests need --------------------------------------------------
# Go (the toolchain builds lastgood, the sample app the tests deliver, and
# the demo's app). Nothing else is needed yet: every test starts its own
# servers (lastgood, routers, sample apps) on 127.0.0.1.
command -v go >/dev/null || { echo "Go is required (https://go.dev/dl); not found in PATH" >&2; exit 1; }
go version

# --- checks ------------------------------------------------------------------
log "gofmt"
unformatted=$(git ls-files '*.go' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
  echo "not gofmt-clean:"; echo "$unformatted"; exit 1
fi

log "go vet"
go vet ./...

log "go test -race"
go test -race -count=1 -timeout 25m ./...
