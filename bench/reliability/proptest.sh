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
# Built once; the rounds run the test binary itself, so nothing rebuilds mid-run.
# CAIRN_CARGO wraps cargo (e.g. "flock /tmp/cargo.lock cargo" on a shared machine).
BIN=$(CARGO_INCREMENTAL=0 ${CAIRN_CARGO:-cargo} test -p cairn --test hostile_input --no-run 2>&1 \
    | grep -o 'target/[^ )]*/hostile_input-[0-9a-f]*' | tail -n 1)
[[ -x "$BIN" ]] || { echo "could not build the hostile_input test binary" >&2; exit 1; }
# Properties: every test but the fixed ones (named *_are_integrity_errors).
PROPS=$("$BIN" --list 2>/dev/null | grep ': test$' | grep -vc '_are_integrity_errors')
start=$(date +%s)
rounds=0
while (( $(date +%s) - start < SECONDS_BUDGET )); do
    if ! "$BIN" -q > /tmp/cairn-proptest.$$ 2>&1; then
        tail -n 60 /tmp/cairn-proptest.$$
        echo "FIGURES a case failed after $rounds full rounds ($((rounds * PROPTEST_CASES * PROPS)) cases)"
        exit 1
    fi
    rounds=$((rounds + 1))
done
rm -f /tmp/cairn-proptest.$$
echo "FIGURES no panic in $((rounds * PROPTEST_CASES * PROPS)) cases ($rounds rounds, $PROPS properties, $(( $(date +%s) - start ))s)"
