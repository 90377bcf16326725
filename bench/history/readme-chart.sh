#!/usr/bin/env bash
# Makes docs/img/bench-history.svg, the README's picture: RUNS (8) real `cairn bench` runs of a
# local store in a temp dir, each archived with its run number as the commit, then charted by
# `cairn bench history`. Takes about a minute. Usage: bench/history/readme-chart.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p cairn-cli
bin=target/debug/cairn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "${RUNS:-8}"); do
  "$bin" -q --root "$work/root" bench local://bench --sizes 4K --count 200 --large 32M \
    --archive readme --archive-store "file://$work/archive" --commit "run$i" >/dev/null
done
# Exit 1 only says the newest run regressed; the chart is written either way.
"$bin" bench history archive:readme --archive-store "file://$work/archive" \
  --op put,get,large_download --metric ops_per_sec,mb_per_sec \
  --plot docs/img/bench-history.svg || [ $? -eq 1 ]
echo "wrote docs/img/bench-history.svg"
