#!/usr/bin/env bash
# Start throwaway S3 servers for the test suite: moto, a single-node Garage and
# a 3-node Garage cluster (replication factor 3), on free 127.0.0.1 ports, with all state in a fresh temp dir.
#
# Usage: scripts/servers/start.sh [ENV_FILE]
#   Writes `export CAIRN_TEST_...` lines to ENV_FILE (default: STATE/env; a
#   copy is always in STATE/env) and prints the env file path, alone, on
#   stdout. Everything else goes to stderr. Stop with:
#   scripts/servers/stop.sh ENV_FILE_OR_STATE_DIR
#
# A server that does not come up within CAIRN_SERVERS_WAIT seconds (default
# 30) is a hard failure: its log tail is printed and nothing is left running.
# CAIRN_SERVERS (default "moto garage garage3") picks servers, for local debugging.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Local servers must never be reached through a proxy.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

SERVERS="${CAIRN_SERVERS:-moto garage garage3}"
WAIT_SECS="${CAIRN_SERVERS_WAIT:-30}"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { printf 'servers: %s\n' "$*" >&2; }

# Run servers in their own session/process group so stop.sh can kill each
# one with everything it spawned, and a Ctrl-C on the caller does not race
# the caller's own cleanup.
# (An array, not a function: "$!" must be the server's own PID.)
DETACH=()
if command -v setsid >/dev/null 2>&1; then DETACH=(setsid); fi

STATE="$(mktemp -d "${TMPDIR:-/tmp}/cairn-servers.XXXXXX")"
touch "$STATE/.cairn-servers" # marker: stop.sh only deletes dirs carrying it
: >"$STATE/pids"              # "name pid" lines, read by stop.sh
log "state dir: $STATE (logs: $STATE/*.log)"

# If anything below fails, stop what was started so no server leaks.
started_ok=0
on_exit() {
  if [ "$started_ok" != 1 ]; then
    log "start failed; stopping servers and removing $STATE"
    "$HERE/stop.sh" "$STATE" >&2 || true
  fi
}
trap on_exit EXIT

die() {
  log "ERROR: $1"
  shift
  for f in "$@"; do
    if [ -f "$f" ]; then
      log "---- last lines of $f ----"
      tail -n 40 "$f" >&2
    fi
  done
  exit 1
}

hex() { "$PYTHON" -c "import secrets,sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"; }

# Print N distinct free TCP ports. All sockets stay bound until every port is
# chosen, so the N ports differ; the small race with other processes is fine.
free_ports() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Succeeds once URL answers HTTP at all (any status, 4xx included).
http_up() {
  "$PYTHON" - "$1" <<'PY'
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    opener.open(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
PY
}

# s3_bucket create|check ENDPOINT BUCKET REGION AK SK: make or verify a bucket
# through the S3 API with boto3 (shipped with moto), path-style addressing.
s3_bucket() {
  "$PYTHON" - "$@" <<'PY'
import sys, boto3
from botocore.config import Config
mode, ep, bucket, region, ak, sk = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=ep, region_name=region,
                  aws_access_key_id=ak, aws_secret_access_key=sk,
                  config=Config(s3={"addressing_style": "path"},
                                retries={"max_attempts": 1}, proxies={}))
if mode == "create":
    kw = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **kw)
s3.head_bucket(Bucket=bucket)
PY
}

# retry DESC PID OUTFILE LOG... -- CMD...: rerun CMD (stdout+stderr to OUTFILE)
# until it succeeds; fail if process PID dies or WAIT_SECS pass.
retry() {
  local desc="$1" pid="$2" out="$3" logs=()
  shift 3
  while [ "$1" != "--" ]; do
    logs+=("$1")
    shift
  done
  shift
  local deadline=$((SECONDS + WAIT_SECS))
  until "$@" >"$out" 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$desc: server process $pid exited" "${logs[@]}" "$out"
    ((SECONDS < deadline)) || die "$desc: not done after ${WAIT_SECS}s" "${logs[@]}" "$out"
    sleep 0.25
  done
}

RUN_ID="$(hex 4)"
ENV_LINES=()
setenv() { ENV_LINES+=("$(printf 'export %s=%q' "$1" "$2")"); }

setenv CAIRN_TEST_RUN_ID "$RUN_ID"
setenv CAIRN_TEST_SERVERS_STATE "$STATE"
# Keep SDKs from probing cloud metadata endpoints and from using proxies.
setenv AWS_EC2_METADATA_DISABLED true
setenv no_proxy "$no_proxy"
setenv NO_PROXY "$no_proxy"

start_moto() {
  local port pid ep bucket=cairn-test mlog="$STATE/moto.log"
  port="$(free_ports 1)"
  ep="http://127.0.0.1:$port"
  ${DETACH[@]+"${DETACH[@]}"} "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" </dev/null >"$mlog" 2>&1 &
  pid=$!
  echo "moto $pid" >>"$STATE/pids"
  retry "moto on $ep" "$pid" "$STATE/moto-wait.out" "$mlog" -- http_up "$ep/"
  retry "moto bucket" "$pid" "$STATE/moto-bucket.out" "$mlog" -- \
    s3_bucket create "$ep" "$bucket" us-east-1 testing testing
  setenv CAIRN_TEST_MOTO_ENDPOINT "$ep"
  setenv CAIRN_TEST_MOTO_BUCKET "$bucket"
  setenv CAIRN_TEST_MOTO_REGION us-east-1
  setenv CAIRN_TEST_MOTO_ACCESS_KEY_ID testing
  setenv CAIRN_TEST_MOTO_SECRET_ACCESS_KEY testing
  setenv CAIRN_TEST_MOTO_LOG "$mlog"
  log "moto up: $ep (pid $pid, log $mlog)"
}

start_garage() {
  command -v garage >/dev/null 2>&1 ||
    die "garage not found on PATH; run scripts/servers/install.sh"
  local dir="$STATE/garage" s3_port rpc_port admin_port pid
  local glog="$STATE/garage.log" slog="$STATE/garage-setup.log"
  local bucket=cairn-test region=garage
  local admin_token node_id ak sk ep
  mkdir -p "$dir/meta" "$dir/data"
  read -r s3_port rpc_port admin_port <<<"$(free_ports 3)"
  admin_token="$(hex 16)"
  ep="http://127.0.0.1:$s3_port"
  cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "$region"
api_bind_addr = "127.0.0.1:$s3_port"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$admin_token"
TOML
  local g=(garage -c "$dir/garage.toml")
  ${DETACH[@]+"${DETACH[@]}"} "${g[@]}" server </dev/null >"$glog" 2>&1 &
  pid=$!
  echo "garage $pid" >>"$STATE/pids"

  # The CLI talks to the server over RPC; retry until that is up, then give
  # the single node a role so the cluster can store data.
  local out="$dir/cli.out"
  retry "garage rpc" "$pid" "$out" "$glog" -- "${g[@]}" status
  retry "garage node id" "$pid" "$out" "$glog" -- "${g[@]}" node id -q
  # Output is "<64 hex id>@<rpc addr>"; layout assign wants the id (prefix).
  node_id="$(grep -m1 -Eo '^[0-9a-f]{64}' "$out" || true)"
  [ -n "$node_id" ] || die "garage node id printed nothing" "$glog" "$out"
  {
    "${g[@]}" layout assign -z dc1 -c 1G "$node_id"
    "${g[@]}" layout apply --version 1
  } >>"$slog" 2>&1 || die "garage layout setup failed" "$glog" "$slog"

  # Import a key we generate (Garage-style: GK + 24 hex, 64-hex secret), so
  # no CLI output has to be parsed. 2.x needs --yes for an import.
  ak="GK$(hex 12)"
  sk="$(hex 32)"
  retry "garage key import" "$pid" "$out" "$glog" -- \
    "${g[@]}" key import --yes -n cairn-test "$ak" "$sk"
  cat "$out" >>"$slog"
  retry "garage bucket create" "$pid" "$out" "$glog" -- \
    "${g[@]}" bucket create "$bucket"
  cat "$out" >>"$slog"
  # Owner on the test bucket, plus CreateBucket rights so tests may make
  # their own buckets (moto allows that to anyone).
  {
    "${g[@]}" bucket allow --read --write --owner "$bucket" --key "$ak"
    "${g[@]}" key allow --create-bucket "$ak"
  } >>"$slog" 2>&1 || die "garage bucket/key permissions failed" "$glog" "$slog"
  # Prove the whole path works: S3 API up, signature with our key accepted.
  retry "garage s3 on $ep" "$pid" "$out" "$glog" "$slog" -- \
    s3_bucket check "$ep" "$bucket" "$region" "$ak" "$sk"

  setenv CAIRN_TEST_GARAGE_ENDPOINT "$ep"
  setenv CAIRN_TEST_GARAGE_BUCKET "$bucket"
  setenv CAIRN_TEST_GARAGE_REGION "$region"
  setenv CAIRN_TEST_GARAGE_ACCESS_KEY_ID "$ak"
  setenv CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY "$sk"
  setenv CAIRN_TEST_GARAGE_ADMIN_ENDPOINT "http://127.0.0.1:$admin_port"
  setenv CAIRN_TEST_GARAGE_ADMIN_TOKEN "$admin_token"
  setenv CAIRN_TEST_GARAGE_CONFIG "$dir/garage.toml"
  setenv CAIRN_TEST_GARAGE_LOG "$glog"
  log "garage up: $ep (pid $pid, log $glog, config $dir/garage.toml)"
}

# A 3-node Garage cluster, replication factor 3, one node per zone, all on
# 127.0.0.1. Clients use node 1's S3 API; the node-loss tests kill and restart
# nodes 2 and 3 with scripts/servers/garage-node.sh.
start_garage3() {
  command -v garage >/dev/null 2>&1 ||
    die "garage not found on PATH; run scripts/servers/install.sh"
  local dir="$STATE/garage3" secret ak sk n pid ep out
  local bucket=cairn-test region=garage slog="$STATE/garage3/setup.log"
  local ports=() ids=()
  mkdir -p "$dir"
  read -r -a ports <<<"$(free_ports 9)"
  secret="$(hex 32)"
  for n in 1 2 3; do
    local rpc="${ports[$((3 * n - 3))]}" s3="${ports[$((3 * n - 2))]}" adm="${ports[$((3 * n - 1))]}"
    mkdir -p "$dir/node$n/meta" "$dir/node$n/data"
    cat >"$dir/node$n.toml" <<TOML
metadata_dir = "$dir/node$n/meta"
data_dir = "$dir/node$n/data"
db_engine = "sqlite"
replication_factor = 3

rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "$region"
api_bind_addr = "127.0.0.1:$s3"

[admin]
api_bind_addr = "127.0.0.1:$adm"
TOML
    "$HERE/garage-node.sh" start "$n" "$dir" >&2
    [ "$n" = 1 ] && ep="http://127.0.0.1:$s3"
  done
  local g1=(garage -c "$dir/node1.toml")
  pid="$(cat "$dir/node1.pid")"
  out="$dir/cli.out"
  for n in 1 2 3; do
    retry "garage3 node $n id" "$(cat "$dir/node$n.pid")" "$out" "$dir/node$n.log" -- \
      garage -c "$dir/node$n.toml" node id -q
    ids+=("$(grep -m1 -Eo '^[0-9a-f]{64}@[0-9.:]+' "$out" || true)")
    [ -n "${ids[$((n - 1))]}" ] || die "garage3 node $n id printed nothing" "$dir/node$n.log" "$out"
    echo "${ids[$((n - 1))]}" >"$dir/node$n.id" # garage-node.sh reconnects with these
  done
  for n in 2 3; do
    retry "garage3 connect node $n" "$pid" "$out" "$dir/node1.log" -- \
      "${g1[@]}" node connect "${ids[$((n - 1))]}"
  done
  {
    for n in 1 2 3; do
      "${g1[@]}" layout assign -z "dc$n" -c 1G "${ids[$((n - 1))]%@*}"
    done
    "${g1[@]}" layout apply --version 1
  } >>"$slog" 2>&1 || die "garage3 layout setup failed" "$dir/node1.log" "$slog"
  ak="GK$(hex 12)"
  sk="$(hex 32)"
  retry "garage3 key import" "$pid" "$out" "$dir/node1.log" -- \
    "${g1[@]}" key import --yes -n cairn-test "$ak" "$sk"
  retry "garage3 bucket create" "$pid" "$out" "$dir/node1.log" -- \
    "${g1[@]}" bucket create "$bucket"
  {
    "${g1[@]}" bucket allow --read --write --owner "$bucket" --key "$ak"
    "${g1[@]}" key allow --create-bucket "$ak"
  } >>"$slog" 2>&1 || die "garage3 bucket/key permissions failed" "$dir/node1.log" "$slog"
  retry "garage3 s3 on $ep" "$pid" "$out" "$dir/node1.log" "$slog" -- \
    s3_bucket check "$ep" "$bucket" "$region" "$ak" "$sk"

  setenv CAIRN_TEST_GARAGE3_ENDPOINT "$ep"
  setenv CAIRN_TEST_GARAGE3_BUCKET "$bucket"
  setenv CAIRN_TEST_GARAGE3_REGION "$region"
  setenv CAIRN_TEST_GARAGE3_ACCESS_KEY_ID "$ak"
  setenv CAIRN_TEST_GARAGE3_SECRET_ACCESS_KEY "$sk"
  # Node N: config $DIR/nodeN.toml, pid in $DIR/nodeN.pid, log $DIR/nodeN.log.
  setenv CAIRN_TEST_GARAGE3_DIR "$dir"
  setenv CAIRN_TEST_GARAGE3_NODE_SCRIPT "$HERE/garage-node.sh"
  log "garage3 up: $ep (3 nodes, replication factor 3, state $dir)"
}

for s in $SERVERS; do
  case "$s" in
  moto) start_moto ;;
  garage) start_garage ;;
  garage3) start_garage3 ;;
  *) die "unknown server '$s' in CAIRN_SERVERS" ;;
  esac
done

pids="$(awk '{printf "%s%s", sep, $2; sep=" "}' "$STATE/pids")"
setenv CAIRN_TEST_SERVERS_PIDS "$pids"

env_file="${1:-$STATE/env}"
printf '%s\n' "# written by scripts/servers/start.sh; stop: scripts/servers/stop.sh $env_file" \
  "${ENV_LINES[@]}" >"$STATE/env"
if [ "$env_file" != "$STATE/env" ]; then
  mkdir -p "$(dirname "$env_file")"
  cp "$STATE/env" "$env_file"
fi
started_ok=1
log "env file: $env_file (source it; stop with scripts/servers/stop.sh $env_file)"
printf '%s\n' "$env_file"
