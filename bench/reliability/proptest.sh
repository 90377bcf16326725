#!/usr/bin/env bash
# Hostile input at length (docs/reliability.md, "Hostile input"): the property tests of
# crates/cairn/tests/hostile_input.rs, round after round with fresh random seeds, until the
# time budget is spent. Prints "FIGURES no panic in N cases (R rounds, P properties)" or the
# failing case; failures are saved as seeds in hostile_input.proptest-regressions.
# The test command runs the same properties at 48 cases each.
#
# Usage: bench/reliability/proptest.sh
# Knobs (env): CAIRN_PROPTEST_SECONDS (600), PROPTEST_CASES per property per round (2000).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
SECONDS_BUDGET="${CAIRN_PROPTEST_SECONDS:-600}"
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"
echo "cairn $(git rev-parse --short HEAD), $(nproc) cores, $PROPTEST_CASES cases per property per round, ${SECONDS_BUDGET}s"
CARGO_INCREMENTAL=0 cargo test -q -p cairn --test hostile_input --no-run
# Properties: proptest-generated tests in the file (fixed tests excluded).
PROPS=$(cargo test -q -p cairn --test hostile_input -- --list 2>/dev/null | grep -c ': test$')
FIXED=1
PROPS=$((PROPS - FIXED))
start=$(date +%s)
rounds=0
while (( $(date +%s) - start < SECONDS_BUDGET )); do
    if ! CARGO_INCREMENTAL=0 cargo test -q -p cairn --test hostile_input 2>&1 | tail -n 40 > /tmp/cairn-proptest.$$; then
        cat /tmp/cairn-proptest.$$
        echo "FIGURES a case failed after $rounds full rounds ($((rounds * PROPTEST_CASES * PROPS)) cases)"
        exit 1
    fi
    rounds=$((rounds + 1))
done
rm -f /tmp/cairn-proptest.$$
echo "FIGURES no panic in $((rounds * PROPTEST_CASES * PROPS)) cases ($rounds rounds, $PROPS properties, $(( $(date +%s) - start ))s)"
