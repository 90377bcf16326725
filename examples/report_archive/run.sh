#!/usr/bin/env bash
# Runs the report_archive example against the test Garage server (env from scripts/servers/start.sh),
# with credentials passed the standard AWS way.
set -euo pipefail
cd "$(dirname "$0")/../.."
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
export AWS_REGION="$CAIRN_TEST_GARAGE_REGION"
export CAIRN_URL="s3://$CAIRN_TEST_GARAGE_BUCKET/$CAIRN_TEST_RUN_ID/examples/report_archive?endpoint=$CAIRN_TEST_GARAGE_ENDPOINT&path_style=true&provider=garage"
cargo run -q -p cairn --example report_archive
