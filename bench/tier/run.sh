#!/usr/bin/env bash
# The tiered store's benchmark (docs/benchmarks.md, "Tiered store"): Garage with its data on
# /dev/shm as the cold store, the hot tiers and the file:// baseline on this machine's disk
# (target/tier-bench), one process timing interleaved rounds. Prints Markdown tables.
# Not part of the test command.
#
# Usage: bench/tier/run.sh        Knobs (env): TIER_BENCH_ROUNDS (9), TIER_BENCH_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo build --release -q -p cairn --example tier_bench
env_file="$(TMPDIR=/dev/shm scripts/servers/start.sh 2>/dev/null)"
trap 'scripts/servers/stop.sh "$env_file" >/dev/null 2>&1 || true' EXIT
# shellcheck source=/dev/null
source "$env_file"
export TIER_BENCH_S3="s3://$CAIRN_TEST_GARAGE_BUCKET?endpoint=$CAIRN_TEST_GARAGE_ENDPOINT&region=$CAIRN_TEST_GARAGE_REGION&path_style=true&provider=garage&access_key_id=$CAIRN_TEST_GARAGE_ACCESS_KEY_ID&secret_access_key=$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, Garage on /dev/shm, hot dirs on $(df --output=fstype "${TIER_BENCH_DIR:-target}" | tail -1)"
"${CARGO_TARGET_DIR:-target}/release/examples/tier_bench"
