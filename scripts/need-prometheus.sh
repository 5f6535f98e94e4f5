#!/usr/bin/env bash
# Installs the Prometheus server (Debian package `prometheus`) when it is not
# in PATH: the Prometheus signal's tests start a real one on 127.0.0.1.
# The package does not start a service; the tests start their own server.
# Usage: scripts/need-prometheus.sh   (scripts/test.sh calls it)
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "need-prometheus: prometheus is not installed and apt-get is not available; install the Prometheus server (2.x or later) so that \`prometheus\` is in PATH" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "need-prometheus: installing the Debian package prometheus" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || {
  echo "need-prometheus: the package installed, but no prometheus binary was found" >&2
  exit 1
}
