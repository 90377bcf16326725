#!/usr/bin/env bash
# Runs the agent_snapshots example against the test Garage server (env from scripts/servers/start.sh),
# with credentials passed the standard AWS way.
set -euo pipefail
cd "$(dirname "$0")/../.."
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
export AWS_REGION="$CAIRN_TEST_GARAGE_REGION"
export CAIRN_URL="s3://$CAIRN_TEST_GARAGE_BUCKET/$CAIRN_TEST_RUN_ID/examples/agent_snapshots?endpoint=$CAIRN_TEST_GARAGE_ENDPOINT&path_style=true&provider=garage"
cargo run -q -p cairn --example agent_snapshots
python examples/agent_snapshots/agent_snapshots.py
