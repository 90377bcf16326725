#!/usr/bin/env bash
# Backpressure (docs/reliability.md, "Backpressure under SlowDown"): `cairn cp -r` of 2,000
# small files to Garage through the fault proxy answering 503 SlowDown beyond N requests in
# flight, timed with cairn's adaptive limit (the default) and with a fixed concurrency
# (adaptive_concurrency=false), each run to a fresh prefix. Prints one line per run.
#
# Usage: bench/reliability/backpressure.sh
# Knobs (env): OBJECTS (2000), IN_FLIGHT (8, the proxy's N), JOBS (32, cp's object concurrency),
#              LATENCY_MS (20, held per request at the proxy).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
OBJECTS="${OBJECTS:-2000}"
IN_FLIGHT="${IN_FLIGHT:-8}"
JOBS="${JOBS:-32}"
# Every request held this long at the proxy (a slow server), so the client keeps more than
# IN_FLIGHT going however fast it runs itself.
LATENCY_MS="${LATENCY_MS:-20}"
cargo build --release -q -p cairn-cli -p cairn-faultproxy
BIN="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d)"
env_file="$(CAIRN_SERVERS="garage" scripts/servers/start.sh 2>/dev/null)"
proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  scripts/servers/stop.sh "$env_file" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$env_file"
mkdir -p "$work/src"
for i in $(seq 1 "$OBJECTS"); do head -c $((1024 + i % 512)) /dev/urandom >"$work/src/o$i"; done
"$BIN/cairn-fault-proxy" --upstream "$CAIRN_TEST_GARAGE_ENDPOINT" --slowdown-above "$IN_FLIGHT" --latency-ms "$LATENCY_MS" \
  >"$work/proxy.out" &
proxy_pid=$!
for _ in $(seq 50); do grep -q listening "$work/proxy.out" && break; sleep 0.1; done
proxy="$(sed -n 's/^listening on //p' "$work/proxy.out")"
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, $OBJECTS files of 1-1.5 KiB, SlowDown above $IN_FLIGHT in flight, ${LATENCY_MS} ms per request, cp -j $JOBS"
counts() { curl -s "$proxy/__faultproxy/counts"; }
for mode in adaptive fixed; do
  adaptive=true
  [ "$mode" = fixed ] && adaptive=false
  before="$(counts | sed -n 's/.*slowdown=\([0-9]*\).*/\1/p')"
  url="s3://$CAIRN_TEST_GARAGE_BUCKET/$CAIRN_TEST_RUN_ID/backpressure-$mode/?endpoint=$proxy&region=$CAIRN_TEST_GARAGE_REGION&path_style=true&provider=garage"
  start=$(date +%s.%N)
  status=0
  "$BIN/cairn" -q -o "adaptive_concurrency=$adaptive" cp -r -j "$JOBS" "$work/src/" "$url" >"$work/$mode.log" 2>&1 || status=$?
  end=$(date +%s.%N)
  after="$(counts | sed -n 's/.*slowdown=\([0-9]*\).*/\1/p')"
  printf '%-9s %6.1f s  exit %d  SlowDowns %d\n' "$mode" "$(echo "$end - $start" | bc)" "$status" $((after - before))
  [ "$status" = 0 ] || tail -3 "$work/$mode.log"
done
