#!/usr/bin/env bash
# A/B of two builds of the router benchmark's proxy (bench/router), in one
# run: one backend, the two proxies side by side, wrk rounds interleaved
# (A, B, A, B, ...). Prints each round's requests/s and the proxy's CPU per
# request (user+system from /proc, the most noise-resistant figure on a
# busy machine). Usage: bench/router/ab.sh A_BINARY B_BINARY [ROUNDS]
# Build each with: go build -o BIN ./bench/router (at the commit to test).
# Ports: BACKEND_PORT (18091), A_PORT (18092), B_PORT (18093).
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-5}"
backend_port="${BACKEND_PORT:-18091}"; a_port="${A_PORT:-18092}"; b_port="${B_PORT:-18093}"
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
"$b" backend -listen "127.0.0.1:$backend_port" & pids+=($!)
"$a" proxy -listen "127.0.0.1:$a_port" -backend "127.0.0.1:$backend_port" & a_pid=$!; pids+=($a_pid)
"$b" proxy -listen "127.0.0.1:$b_port" -backend "127.0.0.1:$backend_port" & b_pid=$!; pids+=($b_pid)
"$b" wait "http://127.0.0.1:$backend_port/" "http://127.0.0.1:$a_port/" "http://127.0.0.1:$b_port/"
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks (10 ms)
echo "| round | build | req/s | proxy CPU per request |"
echo "|---|---|---:|---:|"
for r in $(seq "$rounds"); do
	for side in A B; do
		if [ "$side" = A ]; then pid=$a_pid; port=$a_port; else pid=$b_pid; port=$b_port; fi
		before=$(cpu "$pid")
		out=$(wrk -t2 -c64 -d10s "http://127.0.0.1:$port/")
		after=$(cpu "$pid")
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
		rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
		us=$(awk -v t=$((after - before)) -v n="$reqs" 'BEGIN { printf "%.1fµs", t * 10000 / n }')
		echo "| $r | $side | $rps | $us |"
	done
done
uptime
