#!/usr/bin/env bash
# Use cases 000 (benchmark report archive) and 002 (racing telemetry) as the plain boto3
# programs they are, against `cairn serve` over a local store with zstd + AES: the programs
# only see S3_ENDPOINT_URL. The gateway is stopped with SIGTERM and must exit 0.
set -euo pipefail
cd "$(dirname "$0")"
export NO_PROXY=127.0.0.1
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/key"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export CAIRN_SERVE_ACCESS_KEY=examples CAIRN_SERVE_SECRET_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cairn serve --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
  --bucket "reports=file://$tmp/reports?compression=zstd&encryption_key=file:$tmp/key" \
  --bucket "telemetry=file://$tmp/telemetry?compression=zstd&encryption_key=file:$tmp/key" \
  >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
for _ in $(seq 50); do
  grep -q "listening on" "$tmp/serve.out" 2>/dev/null && break
  sleep 0.1
done
cat "$tmp/serve.out"
export S3_ENDPOINT_URL="http://127.0.0.1:$port" S3_REGION=us-east-1
export S3_ACCESS_KEY_ID="$CAIRN_SERVE_ACCESS_KEY" S3_SECRET_ACCESS_KEY="$CAIRN_SERVE_SECRET_KEY"
S3_BUCKET_NAME=reports python3 bench_reports.py
S3_BUCKET_NAME=telemetry python3 race_telemetry.py
# The objects are compressed and encrypted at rest: no CSV header in any stored file.
if grep -rqs "lap,vehicle,seconds" "$tmp/telemetry"; then
  echo "telemetry stored in clear" >&2
  exit 1
fi
kill -TERM "$pid"
wait "$pid"
pid=""
echo "serve_boto3: ok"
