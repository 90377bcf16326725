#!/usr/bin/env bash
# Runs the analysis_store example (use case 003) against the test Garage server (env from
# scripts/servers/start.sh), configured the way the application is: STORAGE_TYPE + S3_* vars.
set -euo pipefail
cd "$(dirname "$0")"
export STORAGE_TYPE=s3
export S3_BUCKET_NAME="$CAIRN_TEST_GARAGE_BUCKET"
export S3_PREFIX="$CAIRN_TEST_RUN_ID/examples/analysis_store"
export S3_ENDPOINT_URL="$CAIRN_TEST_GARAGE_ENDPOINT"
export S3_REGION="$CAIRN_TEST_GARAGE_REGION"
export S3_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
export S3_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
export S3_PATH_STYLE=true
export CAIRN_PROVIDER=garage
python analysis_store.py
