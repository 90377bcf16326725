#!/usr/bin/env bash
# Crash mid-transfer at full size (docs/reliability.md, "Crash mid-transfer"): `cairn sync`
# and `cairn cp -r` killed with SIGKILL at seeded random points (2/5 local -> local, 3/10
# local -> moto, 3/10 moto -> local), each followed by a `cairn sync` re-run, with every
# check of crates/cairn-cli/tests/cli_crash.rs after each kill. Prints one line per route:
# kills, re-runs, files missing and transferred, torn files, uploads left open.
# The test command runs the same test with 50 kills.
#
# Usage: bench/reliability/crash.sh
# Knobs (env): CAIRN_CRASH_KILLS (500), CAIRN_CRASH_SEED (the test's default seed).
# Starts its own servers (scripts/servers/start.sh) and stops them at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CAIRN_CRASH_KILLS="${CAIRN_CRASH_KILLS:-500}"
env_file="$(CAIRN_SERVERS=moto scripts/servers/start.sh)"
trap 'scripts/servers/stop.sh "$env_file"' EXIT
# shellcheck disable=SC1090
source "$env_file"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, $CAIRN_CRASH_KILLS kills"
CARGO_INCREMENTAL=0 cargo test -q -p cairn-cli --test cli_crash -- --nocapture 2>&1 |
  grep -E '^crash |panicked|test result'
