#!/usr/bin/env bash
# Benchmarks lastgood's router against the backend reached directly and
# against nginx as a keep-alive reverse proxy, all on this machine, in one
# run. Prints a Markdown table. Usage: bench/router/run.sh [compare flags]
# Ports: BACKEND_PORT (18081), ROUTER_PORT (18082), NGINX_PORT (18083).
# PROFILE=file writes a CPU profile of the router process.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
backend_port="${BACKEND_PORT:-18081}"
router_port="${ROUTER_PORT:-18082}"
nginx_port="${NGINX_PORT:-18083}"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null
fi

work="$(mktemp -d /tmp/lastgood-router-bench.XXXXXX)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

for port in "$backend_port" "$router_port" "$nginx_port"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port is already in use" >&2
		exit 1
	fi
done

(cd "$root" && go build -o "$work/bench" ./bench/router)

"$work/bench" backend -listen "127.0.0.1:$backend_port" &
backend_pid=$!
pids+=($backend_pid)
profile_flag=()
if [[ -n "${PROFILE:-}" ]]; then
	profile_flag=(-cpuprofile "$PROFILE")
fi
"$work/bench" proxy -listen "127.0.0.1:$router_port" -backend "127.0.0.1:$backend_port" "${profile_flag[@]}" &
router_pid=$!
pids+=($router_pid)

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $work/nginx/body;
	proxy_temp_path $work/nginx/proxy;
	fastcgi_temp_path $work/nginx/fastcgi;
	uwsgi_temp_path $work/nginx/uwsgi;
	scgi_temp_path $work/nginx/scgi;
	upstream backend {
		server 127.0.0.1:$backend_port;
		keepalive 256;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:$nginx_port;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
pids+=($nginx_pid)

"$work/bench" wait "http://127.0.0.1:$backend_port/" "http://127.0.0.1:$router_port/" "http://127.0.0.1:$nginx_port/"

echo "## Machine"
echo
echo "- CPUs: $(nproc), $(lscpu | grep 'Model name' | sed 's/Model name: *//')"
echo "- Memory: $(free -h | awk '/^Mem:/ {print $2}')"
echo "- $(go version)"
echo "- $(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## Results"
echo
"$work/bench" compare \
	-direct "http://127.0.0.1:$backend_port/" \
	-router "http://127.0.0.1:$router_port/" \
	-nginx "http://127.0.0.1:$nginx_port/" \
	-direct-pid "$backend_pid" -router-pid "$router_pid" -nginx-pid "$nginx_pid" "$@"
