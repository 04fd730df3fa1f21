#!/usr/bin/env bash
# Measures rayo on this machine and prints numbers (never pass/fail):
#   - GET /.well-known/lnurlp/satoshi, next to nginx serving the same bytes as a static file;
#   - the callback on the dev backend (signs, checks and durably stores an invoice per request);
#   - rayo's peak resident memory over the whole run.
# Usage: scripts/bench.sh            (DURATION=10s CONNECTIONS=64 THREADS=2 to change the load)
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --quiet
work=$(mktemp -d)
chmod 755 "$work"
rayo_pid="" nginx_pid=""
cleanup() {
  [ -n "$rayo_pid" ] && kill "$rayo_pid" 2>/dev/null && wait "$rayo_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

rayo_port=$(free_port)
rayo_url="http://127.0.0.1:$rayo_port"
# One client address makes every request here, so the per-IP rate limit and the cap on one
# user's unpaid invoices are off: this measures throughput, not policy.
RAYO_DATA_DIR="$work/data" RAYO_BIND="127.0.0.1:$rayo_port" RAYO_PUBLIC_URL="$rayo_url" RAYO_LOG=warn \
  RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE=0 RAYO_MAX_PENDING_PER_USER=0 \
  ./target/release/rayo serve >"$work/rayo.log" 2>&1 &
rayo_pid=$!
wait_for "$rayo_url/healthz"

# nginx serves the very bytes rayo serves, as a static file.
mkdir -p "$work/www/.well-known/lnurlp" "$work/nginx"
curl -sf "$rayo_url/.well-known/lnurlp/satoshi" >"$work/www/.well-known/lnurlp/satoshi"
chmod -R a+rX "$work/www"
nginx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    default_type application/json;
    add_header Access-Control-Allow-Origin *;
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
wait_for "http://127.0.0.1:$nginx_port/.well-known/lnurlp/satoshi"

# wrk prints "Requests/sec: N" and, with --latency, "50% 1.2ms" style lines.
measure() {
  local name=$1 url=$2 out
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" >/dev/null 2>&1 # warm up
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-34s %12s %10s %10s  %s\n' "$name" "$rps" "$p50" "$p99" "$errors"
  eval "rps_${3}=$rps"
}

echo "rayo benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) cores"
printf '%-34s %12s %10s %10s\n' "endpoint" "req/s" "p50" "p99"
measure "nginx static file (baseline)" "http://127.0.0.1:$nginx_port/.well-known/lnurlp/satoshi" nginx
measure "rayo /.well-known/lnurlp/satoshi" "$rayo_url/.well-known/lnurlp/satoshi" wellknown
measure "rayo callback (durable, dev)" "$rayo_url/lnurlp/satoshi/callback?amount=21000" callback

peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$rayo_pid/status")
stored=$(RAYO_DATA_DIR="$work/data" RAYO_ADMIN_URL="$rayo_url" ./target/release/rayo invoice list --limit 1000 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo
awk -v a="$rps_wellknown" -v b="$rps_nginx" 'BEGIN { printf "well-known / nginx:  %.2fx\n", a / b }'
echo "rayo peak RSS:       $((peak_kb / 1024)) MiB ($peak_kb kB)"
echo "invoices stored:     at least $stored (listing capped at 1000)"
