#!/usr/bin/env bash
# Installs a Debian package when the command the tests need is not in PATH.
# The packages do not start services; the tests start what they need on
# 127.0.0.1 themselves. Used by scripts/test.sh:
#   scripts/need.sh prometheus prometheus   # the Prometheus signal's tests scrape a real server
#   scripts/need.sh chromium chromium       # the incident report test opens the HTML post-mortem
# Usage: scripts/need.sh COMMAND PACKAGE
set -euo pipefail

cmd=$1 pkg=$2
if command -v "$cmd" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "need: $cmd is not installed and apt-get is not available; install $pkg so that \`$cmd\` is in PATH" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "need: installing the Debian package $pkg (for \`$cmd\`)" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
command -v "$cmd" >/dev/null 2>&1 || {
  echo "need: the package $pkg installed, but no $cmd command was found" >&2
  exit 1
}
