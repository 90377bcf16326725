#!/usr/bin/env bash
# Runs the report_archive example against the test Garage server (env from scripts/servers/start.sh),
# with credentials passed the standard AWS way, then charts the archived reports with
# `cairn bench history` (the newest regressed, so it exits 1) and removes them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
export AWS_REGION="$CAIRN_TEST_GARAGE_REGION"
base="s3://$CAIRN_TEST_GARAGE_BUCKET/$CAIRN_TEST_RUN_ID/examples/report_archive"
query="?endpoint=$CAIRN_TEST_GARAGE_ENDPOINT&path_style=true&provider=garage"
export CAIRN_URL="$base$query"
cargo run -q -p cairn --example report_archive

out=target/examples/report_archive
mkdir -p "$out"
rc=0
cairn bench history "$base/benchmarks/repo-42/$query" --plot "$out/history.svg" \
  --html "$out/history.html" || rc=$?
[ "$rc" -eq 1 ] || { echo "bench history: expected exit 1 (the newest report regressed), got $rc" >&2; exit 1; }
grep -q '<svg' "$out/history.svg"
echo "report_archive: history chart in $out/history.svg"
cairn -q rm -r "$base/$query"
