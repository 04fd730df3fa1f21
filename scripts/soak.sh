#!/usr/bin/env bash
# Weeks of unpaid callbacks against a fresh store, simulated in about a minute and a half:
# prints the store's size each simulated day, which levels off once retention (7 days for
# expired unpaid invoices by default) removes as much as arrives. See `rayo dev soak --help`.
#
#   scripts/soak.sh [--days 42] [--per-hour 500] [--paid-one-in 50]
#
# RAYO_RETENTION_UNPAID / RAYO_RETENTION_PAID apply as in the server.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin rayo >&2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
RAYO_DATA_DIR="$dir/data" RAYO_BIND=127.0.0.1:1 "$OLDPWD/target/release/rayo" dev soak "$@"
