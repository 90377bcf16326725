#!/usr/bin/env bash
# Faults in a store layer at the full bar (docs/reliability.md, "Faults in a store layer"):
# 10,000 mixed operations per layer stack (memory and local, with checksum, compression and
# encryption) over a FaultStore failing ~10% of backend calls. Prints one FIGURES line per
# stack: operations, faults injected by kind, lost, corrupt, typed errors by kind.
# The test command runs the same suite at 1,500 operations per stack.
#
# Usage: bench/reliability/faults_store.sh
# Knobs (env): CAIRN_FAULT_OPS (10000), CAIRN_FAULT_SEED (0x5eed = 24301), CAIRN_FAULT_RATE (0.10).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CAIRN_FAULT_OPS="${CAIRN_FAULT_OPS:-10000}"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, $CAIRN_FAULT_OPS operations per stack"
CARGO_INCREMENTAL=0 cargo test -q -p cairn --test faults_store -- --nocapture --test-threads 1 2>&1 \
    | grep -oE 'FIGURES.*|[a-z+]+: (op [0-9]+|end): .*|panicked.*|test result.*'
