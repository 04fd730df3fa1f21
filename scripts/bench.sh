#!/usr/bin/env bash
# Measures rayo on this machine and prints numbers, never pass/fail. Every rate is shown next to
# nginx serving the same payRequest JSON as a static file, measured in the same run:
#   1. GET /.well-known/lnurlp/satoshi;
#   2. the callback on the dev backend (signs, checks and durably stores an invoice per request);
#   3. the callback through an external phoenixd-shaped upstream (../shared/bench/fake-phoenixd,
#      which signs a real regtest invoice per request);
#   4. peak resident memory of each rayo, and disk bytes per invoice after the run;
#   5. on a generated store of STORE_INVOICES invoices and STORE_USERS users: start-up to a
#      ready /readyz, resident memory once idle, disk bytes per invoice, and callback throughput.
#
# Usage: scripts/bench.sh
#   DURATION=10s CONNECTIONS=64 THREADS=2   the load of each measurement (after a 2 s warm-up)
#   RAYO=path/to/rayo                       measure this binary instead of building one
#   STORE_INVOICES=1000000 STORE_USERS=100000   the large store; STORE_INVOICES=0 skips part 5
#   STORE_CACHE=dir                         keep the generated store there and reuse it next time
#                                           (it is specific to the binary's storage format)
#   DATABASE_URL=postgres://...             also measure the dev callback with the store in
#                                           PostgreSQL, beside sled
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
STORE_INVOICES=${STORE_INVOICES:-1000000}
STORE_USERS=${STORE_USERS:-100000}
cd "$(dirname "$0")/.."
root=$PWD

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${RAYO:-}" ]; then
  cargo build --release --quiet
  RAYO=$root/target/release/rayo
fi
# The upstream is built outside ../shared (read-only in CI), once.
fake_phoenixd=$root/target/bench-upstream/release/fake-phoenixd
if [ ! -x "$fake_phoenixd" ]; then
  echo "building ../shared/bench/fake-phoenixd..." >&2
  (cd ../shared/bench/fake-phoenixd && CARGO_TARGET_DIR=$root/target/bench-upstream cargo build --release --quiet)
fi

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
peak_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
store_bytes() { du -sb "$1" | cut -f1; }
stop() { kill "$1" && wait "$1" 2>/dev/null || true; }

# Starts rayo on data directory $1 with extra settings "$@" after it; sets rayo_pid, rayo_url.
# One client address makes every request here, so the per-client rate limits and the caps on
# unpaid invoices are off: this measures throughput, not policy.
start_rayo() {
  local data=$1
  shift
  local port
  port=$(free_port)
  rayo_url="http://127.0.0.1:$port"
  env RAYO_DATA_DIR="$data" RAYO_BIND="127.0.0.1:$port" RAYO_PUBLIC_URL="$rayo_url" RAYO_LOG=warn \
    RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE=0 RAYO_MAX_PENDING_PER_USER=0 RAYO_MAX_PENDING_PER_CLIENT=0 \
    "$@" "$RAYO" serve >>"$work/rayo.log" 2>&1 &
  rayo_pid=$!
  pids+=("$rayo_pid")
}

# wrk prints "Requests/sec: N", "N requests in", "Non-2xx or 3xx responses: N" and, with
# --latency, "50% 1.2ms" style lines. Sets rps_<key> and adds the successful requests to ok_<key>.
measure() {
  local name=$1 url=$2 key=$3 out warm
  warm=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" 2>&1)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  local rps p50 p99 errors ok
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  ok=$(printf '%s\n%s\n' "$warm" "$out" | awk '/requests in/ {n += $1} /Non-2xx/ {n -= $NF} END {print n}')
  eval "rps_${key}=$rps ok_${key}=$ok"
  local ratio
  ratio=$(awk -v a="$rps" -v b="${rps_nginx:-$rps}" 'BEGIN { printf "%.2fx", a / b }')
  printf '%-44s %10s %7s %9s %9s  %s\n' "$name" "$rps" "$ratio" "$p50" "$p99" "$errors"
}

echo "rayo benchmark: $RAYO"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) cores, $(date -u +%FT%TZ)"
printf '%-44s %10s %7s %9s %9s\n' "" "req/s" "/nginx" "p50" "p99"

# 1. The dev-backend instance, and nginx serving the bytes it serves.
start_rayo "$work/dev"
dev_pid=$rayo_pid dev_url=$rayo_url
wait_for "$dev_url/healthz"
mkdir -p "$work/www/.well-known/lnurlp" "$work/nginx"
curl -sf "$dev_url/.well-known/lnurlp/satoshi" >"$work/www/.well-known/lnurlp/satoshi"
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
pids+=($!)
wait_for "http://127.0.0.1:$nginx_port/.well-known/lnurlp/satoshi"

measure "nginx, the same JSON as a static file" "http://127.0.0.1:$nginx_port/.well-known/lnurlp/satoshi" nginx
measure "well-known" "$dev_url/.well-known/lnurlp/satoshi" wellknown
measure "callback, dev backend (durable)" "$dev_url/lnurlp/satoshi/callback?amount=21000" dev
dev_peak=$(peak_mib "$dev_pid")
stop "$dev_pid"
dev_bytes=$(store_bytes "$work/dev")

# 1b. The same callback with the store in PostgreSQL, when a database is given (it must be
# empty or hold only what an earlier run left; nothing else may run on it).
if [ -n "${DATABASE_URL:-}" ]; then
  start_rayo "$work/pg" RAYO_DATABASE_URL="$DATABASE_URL"
  pg_pid=$rayo_pid
  wait_for "$rayo_url/healthz"
  measure "callback, dev backend, store in PostgreSQL" "$rayo_url/lnurlp/satoshi/callback?amount=21000" pg
  awk -v a="$rps_pg" -v b="$rps_dev" 'BEGIN { printf "%-44s %10s %6.2fx of sled\n", "", "", a / b }'
  stop "$pg_pid"
fi

# 2. Through an external phoenixd-shaped upstream.
upstream_port=$(free_port)
"$fake_phoenixd" "$upstream_port" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$upstream_port/getinfo"
start_rayo "$work/phoenixd" RAYO_BACKEND=phoenixd RAYO_NETWORK=regtest \
  RAYO_PHOENIXD_URL="http://127.0.0.1:$upstream_port/" RAYO_PHOENIXD_PASSWORD=bench
phoenixd_pid=$rayo_pid
wait_for "$rayo_url/healthz"
measure "callback, external phoenixd-shaped upstream" "$rayo_url/lnurlp/satoshi/callback?amount=21000" phoenixd
phoenixd_peak=$(peak_mib "$phoenixd_pid")
stop "$phoenixd_pid"

echo
echo "peak RSS, dev instance:          $dev_peak MiB"
echo "peak RSS, phoenixd instance:     $phoenixd_peak MiB"
awk -v b="$dev_bytes" -v n="$ok_dev" \
  'BEGIN { printf "disk per invoice, dev store:     %d bytes (%.1f MB for %d invoices)\n", b / n, b / 1e6, n }'

# 3. A store after years of use, made through the store API rather than HTTP.
((STORE_INVOICES > 0)) || exit 0
echo
store=${STORE_CACHE:-$work/large-store}
if [ ! -d "$store" ]; then
  echo "generating $STORE_INVOICES invoices for $STORE_USERS users in $store..." >&2
  started=$(date +%s.%N)
  RAYO_DATA_DIR="$store" RAYO_LOG=warn "$RAYO" dev populate --users "$STORE_USERS" --invoices "$STORE_INVOICES" >&2
  awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "generated in %.0f s\n", e - s }' >&2
fi
large=$work/large
cp -a "$store" "$large"
large_bytes=$(store_bytes "$large")
# Start-up: from exec to the first 200 from /readyz, polled every 2 ms.
port=$(free_port)
rayo_url="http://127.0.0.1:$port"
startup_ms=$(env RAYO_DATA_DIR="$large" RAYO_BIND="127.0.0.1:$port" RAYO_PUBLIC_URL="$rayo_url" \
  RAYO_LOG=warn RAYO_RATE_LIMIT_CALLBACK_PER_MINUTE=0 RAYO_MAX_PENDING_PER_USER=0 \
  RAYO_MAX_PENDING_PER_CLIENT=0 python3 - "$RAYO" "$rayo_url/readyz" "$work/large.pid" "$work/rayo.log" <<'PY'
import subprocess, sys, time, urllib.request
rayo, url, pid_file, log = sys.argv[1:]
started = time.monotonic()
server = subprocess.Popen([rayo, "serve"], stdout=open(log, "a"), stderr=subprocess.STDOUT)
open(pid_file, "w").write(str(server.pid))
while server.poll() is None:
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200:
            break
    except Exception:
        pass
    time.sleep(0.002)
print(round((time.monotonic() - started) * 1000))
PY
)
large_pid=$(cat "$work/large.pid")
pids+=("$large_pid")
sleep 2
idle_rss=$(rss_mib "$large_pid")
measure "callback, dev, on the large store" "$rayo_url/lnurlp/user000001/callback?amount=21000" large
stop "$large_pid"
echo
echo "large store:                     $STORE_INVOICES invoices, $STORE_USERS users"
awk -v b="$large_bytes" -v n="$STORE_INVOICES" \
  'BEGIN { printf "disk per invoice:                %d bytes (%.0f MB)\n", b / n, b / 1e6 }'
echo "start-up to a ready /readyz:     $startup_ms ms"
echo "RSS idle after opening it:       $idle_rss MiB"
awk -v a="$rps_large" -v b="$rps_dev" 'BEGIN { printf "callback throughput vs empty:    %.2fx\n", a / b }'
