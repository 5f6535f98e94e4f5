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
# the demo's app), and the Prometheus server (Debian package), which the
# Prometheus signal's tests start on 127.0.0.1 themselves, and headless
# Chromium (Debian package), which opens the HTML post-mortem. Every other
# server the tests use (lastgood, routers, sample apps) is their own.
command -v go >/dev/null || { echo "Go is required (https://go.dev/dl); not found in PATH" >&2; exit 1; }
go version
scripts/need.sh prometheus prometheus
prometheus --version 2>&1 | head -1
scripts/need.sh chromium chromium
chromium --version 2>/dev/null | head -1
# Debian's docker-registry: a real OCI registry that the image tests start
# on 127.0.0.1 and push to.
scripts/need.sh docker-registry docker-registry
# Debian's PostgreSQL server: the database tests (internal/database, the
# CLI's data-postgres story) start throwaway clusters with its initdb on
# 127.0.0.1. Its programs are not in PATH (/usr/lib/postgresql/N/bin).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if ! command -v initdb >/dev/null && [ -z "$(pg_bin)" ]; then
  PATH="$PATH:/usr/lib/postgresql/15/bin" scripts/need.sh initdb postgresql
fi
"$( command -v initdb >/dev/null && dirname "$(command -v initdb)" || pg_bin )/postgres" --version

# The Kubernetes engine's tests run on a control plane of their own
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok),
# built from Go modules into a cache outside the repository the first time
# (minutes), reused after. It is stopped when this script ends.
log "kubernetes test cluster"
export LASTGOOD_KUBE_RUN="${TMPDIR:-/tmp}/lastgood-kube-test-$$"
trap 'scripts/kube-cluster.sh down' EXIT
scripts/kube-cluster.sh up
eval "$(scripts/kube-cluster.sh env)"

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

# --- fuzzing -----------------------------------------------------------------
# A short run of every fuzz target (the differential router targets, the
# parsers), after the unit tests, which already ran their seed corpora.
# For long runs: FUZZTIME=2h scripts/fuzz.sh (docs/router.md).
log "fuzz (each target ${FUZZTIME:-8s})"
scripts/fuzz.sh
