#!/usr/bin/env bash
# Runs the ledger_segments example against the test Garage server (env from
# scripts/servers/start.sh), configured through the use case's own environment names
# (STORAGE_TYPE, S3_*) plus AWS_* credentials; the hot tier lives under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export STORAGE_TYPE=s3
export S3_BUCKET_NAME="$CAIRN_TEST_GARAGE_BUCKET"
export S3_PREFIX="$CAIRN_TEST_RUN_ID/examples/ledger_segments"
export S3_ENDPOINT_URL="$CAIRN_TEST_GARAGE_ENDPOINT"
export S3_REGION="$CAIRN_TEST_GARAGE_REGION"
export S3_PATH_STYLE=true
export CAIRN_PROVIDER=garage
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
export LEDGER_HOT_DIR="$PWD/target/examples/ledger_segments/hot"
cargo run -q -p cairn --example ledger_segments
