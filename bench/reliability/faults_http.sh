#!/usr/bin/env bash
# Faults in transit at full size (docs/reliability.md, "Faults in transit"): the test
# crates/cairn/tests/faults_http.rs with 10,000 mixed operations per server (moto and Garage,
# each behind the HTTP fault proxy at a 10% fault rate), printing its figures.
# Not part of the test command, which runs the same test with 400 operations per server.
#
# Usage: bench/reliability/faults_http.sh
# Knobs (env): CAIRN_FAULTS_HTTP_OPS (10000), CAIRN_FAULTS_HTTP_WORKERS (16),
#              CAIRN_FAULTS_HTTP_SEED (18).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CAIRN_FAULTS_HTTP_OPS="${CAIRN_FAULTS_HTTP_OPS:-10000}"
export CAIRN_FAULTS_HTTP_WORKERS="${CAIRN_FAULTS_HTTP_WORKERS:-16}"
env_file="$(CAIRN_SERVERS="moto garage" scripts/servers/start.sh 2>/dev/null)"
trap 'scripts/servers/stop.sh "$env_file" >/dev/null 2>&1 || true' EXIT
# shellcheck source=/dev/null
source "$env_file"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, $CAIRN_FAULTS_HTTP_OPS operations per server"
cargo nextest run -p cairn --test faults_http --no-capture --test-threads 1 2>&1 |
  grep -E '^(faults_http|  )|PASS|FAIL|panicked'
