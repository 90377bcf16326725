#!/usr/bin/env bash
# Runs the analysis_store example (use case 003) against the test moto server (env from
# scripts/servers/start.sh), configured the way the application is: STORAGE_TYPE + S3_* vars.
# moto implements every bucket setting the use case asks for (SSE, versioning, lifecycle
# transitions), so the bucket set-up runs whole; the example makes its own bucket.
set -euo pipefail
cd "$(dirname "$0")"
export STORAGE_TYPE=s3
export S3_BUCKET_NAME="analysis-$CAIRN_TEST_RUN_ID-$$"
export S3_PREFIX="design-analysis"
export S3_ENDPOINT_URL="$CAIRN_TEST_MOTO_ENDPOINT"
export S3_REGION="$CAIRN_TEST_MOTO_REGION"
export S3_ACCESS_KEY_ID="$CAIRN_TEST_MOTO_ACCESS_KEY_ID"
export S3_SECRET_ACCESS_KEY="$CAIRN_TEST_MOTO_SECRET_ACCESS_KEY"
export S3_PATH_STYLE=true
export CAIRN_PROVIDER=moto
export ANALYSIS_CREATE_BUCKET=1
python analysis_store.py
