#!/usr/bin/env bash
# Python against obstore: cairn's Python package beside obstore and boto3 on one local S3
# server (s3s-fs, data on tmpfs), with the same data: N_SMALL objects of SMALL_BYTES (default
# 10,000 x 16 KiB) read with CONCURRENCY GETs in flight (asyncio for cairn and obstore, a
# thread pool for boto3, which has no asyncio API), and one LARGE_MIB object (default 1 GiB)
# read as one stream. Each measurement is its own process (bench/python/client.py), so CPU
# seconds and peak RSS belong to one client. Prints one Markdown table of medians with the
# min-max of wall time and ratios to cairn. A benchmark, not a test.
#
# Usage: bench/python/run.sh
# Knobs (env): N_SMALL (10000), SMALL_BYTES (16384), LARGE_MIB (1024), CONCURRENCY (64),
#   TOOLS ("cairn obstore boto3"), SCENARIOS ("small large"), REPEAT (3 rounds; each round
#   starts one tool later), LARGE_READ=chunks|whole (chunks of CHUNK_MIB, default 8, or one
#   read() of the whole object), WARMUP (untimed GETs before the small pass, 1000),
#   SERVER_DATA=shm|disk (s3s-fs's data in a fresh dir under /dev/shm, the default, or WORK/s3),
#   TIMEOUT (seconds per measured command, 300), SETTLE (seconds of quiet before each, 1),
#   BENCH_LOCK (/tmp/bench.lock: every seeding and measured command runs under
#   `flock -o` on it, so no two benchmarks on the machine overlap), PYTHON (an interpreter
#   with cairn, obstore and boto3 importable), WORK (scratch dir), KEEP=1 keeps WORK,
#   PROFILE=DIR (run each client under `perf record -g`, data in DIR; times then include perf).
# Output: the table on stdout, and WORK/results.jsonl, WORK/table.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.local/bin:$PATH"
PYTHON="${PYTHON:-python3}"
export N_SMALL="${N_SMALL:-10000}" SMALL_BYTES="${SMALL_BYTES:-16384}" LARGE_MIB="${LARGE_MIB:-1024}"
export CONCURRENCY="${CONCURRENCY:-64}" LARGE_READ="${LARGE_READ:-chunks}" CHUNK_MIB="${CHUNK_MIB:-8}"
export WARMUP="${WARMUP:-1000}"
TOOLS="${TOOLS:-cairn obstore boto3}"
SCENARIOS="${SCENARIOS:-small large}"
REPEAT="${REPEAT:-3}"
TIMEOUT="${TIMEOUT:-300}"
SETTLE="${SETTLE:-1}"
SERVER_DATA="${SERVER_DATA:-shm}"
BENCH_LOCK="${BENCH_LOCK:-/tmp/bench.lock}"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-pybench.XXXXXX")}"
export BUCKET=pybench AK=pybenchaccesskey SK=pybenchsecretkey0123456789 REGION=us-east-1
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost"

log() { printf 'pybench: %s\n' "$*" >&2; }
mkdir -p "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
SERVER_PID=""
SHM_DIR=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$WORK/s3"
    if [ -n "$SHM_DIR" ]; then rm -rf "$SHM_DIR"; fi
  fi
}
trap cleanup EXIT

"$PYTHON" -c 'import cairn, obstore, boto3' || {
  log "$PYTHON must import cairn, obstore and boto3 (maturin build --release, pip install obstore boto3)"
  exit 1
}
PYBIN="$("$PYTHON" -c 'import sys; print(sys.executable)')" # the real interpreter, not a shim

# --- the server: s3s-fs 0.14.1 with TCP_NODELAY (bench/lib/s3s_fs.sh) ------------------
SHM_TAG=pybench
# shellcheck source=../lib/s3s_fs.sh
source "$ROOT/bench/lib/s3s_fs.sh"
start_s3s_fs() {
  s3s_fs_start || exit 1
  mkdir -p "$S3_ROOT/$BUCKET"
}

# --- one measured command ----------------------------------------------------------
run_one() {
  local tool="$1" sc="$2" rc=0 out="$WORK/$1-$2.json"
  log "$tool $sc"
  sleep "$SETTLE"
  local prof=()
  if [ -n "${PROFILE:-}" ]; then
    mkdir -p "$PROFILE"
    prof=(perf record -F 499 -g -o "$PROFILE/$tool-$sc.data" --)
  fi
  # The load average when the lock is taken: others' work outside the lock shows up here.
  # The server's CPU (user+sys ticks) is read around the whole client run, warm-up included.
  flock -o "$BENCH_LOCK" sh -c 'cut -d" " -f1 /proc/loadavg >"$0"; awk "{print \$14+\$15}" "/proc/$1/stat" >"$0.s0"; shift; "$@"; rc=$?; awk "{print \$14+\$15}" "/proc/$SERVER_PID/stat" >"$0.s1"; exit $rc' \
    "$WORK/load" "$SERVER_PID" timeout -k 10 "$TIMEOUT" "${prof[@]}" "$PYBIN" "$HERE/client.py" "$tool" "$sc" \
    >"$out" 2>"$WORK/$tool-$sc.err" || rc=$?
  if [ "$rc" -eq 0 ] && [ -s "$out" ]; then
    local line server_cpu
    line="$(tail -n 1 "$out")"
    server_cpu="$(awk -v t="$(getconf CLK_TCK)" -v a="$(cat "$WORK/load.s0")" '{printf "%.2f", ($1 - a) / t}' "$WORK/load.s1")"
    echo "${line%\}}, \"load1\": $(cat "$WORK/load"), \"server_cpu_s\": $server_cpu}" >>"$RESULTS"
  else
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && log "$tool $sc timed out after $TIMEOUT s" \
      || log "$tool $sc failed (exit $rc): $(tail -n 3 "$WORK/$tool-$sc.err" | tr '\n' ' ')"
    printf '{"label": "%s:%s", "tool": "%s", "scenario": "%s", "exit": %d}\n' \
      "$tool" "$sc" "$tool" "$sc" "$rc" >>"$RESULTS"
  fi
}

table() {
  "$PYBIN" - "$RESULTS" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n, size, large_mib = int(os.environ["N_SMALL"]), int(os.environ["SMALL_BYTES"]), int(os.environ["LARGE_MIB"])
def median(xs):
    xs = sorted(xs); m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
groups, tools = {}, []
for r in rows:
    groups.setdefault(r["label"], []).append(r)
    if r["tool"] not in tools:
        tools.append(r["tool"])
def merge(rs):
    done = [r for r in rs if "wall_s" in r and r.get("verify") == "ok"]
    if not done:
        return None
    w = [r["wall_s"] for r in done]
    return {"wall": median(w), "min": min(w), "max": max(w), "cpu": median([r["cpu_s"] for r in done]),
            "rss": median([r["rss_mib"] for r in done]), "ok": len(done), "rounds": len(rs),
            "server": median([r.get("server_cpu_s", float("nan")) for r in done])}
by = {k: merge(v) for k, v in groups.items()}
print("| scenario | tool | wall s (median) | wall s min-max | rate (median) | rate vs cairn | CPU s | CPU / cairn | peak RSS MiB | RSS / cairn | server CPU s | rounds ok |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for sc, what in (("small", f"{n:,} GETs x {size // 1024} KiB"), ("large", f"{large_mib} MiB stream")):
    base = by.get(f"cairn:{sc}")
    for t in tools:
        if f"{t}:{sc}" not in groups:
            continue
        r = by[f"{t}:{sc}"]
        if r is None:
            print(f"| {what} | {t} | failed | | | | | | | | | 0/{len(groups[f'{t}:{sc}'])} |")
            continue
        rate = f"{n / r['wall']:,.0f} obj/s" if sc == "small" else f"{large_mib * 1.048576 / r['wall']:,.0f} MB/s"
        def ratio(a, b):
            return f"{a / b:.2f}x" if base else "-"
        # rate vs cairn: this tool's rate / cairn's (cairn's target: obstore at most 1/1.2 = 0.83x)
        print(f"| {what} | {t} | {r['wall']:.3f} | {r['min']:.3f}-{r['max']:.3f} | {rate} "
              f"| {ratio(base['wall'], r['wall']) if base else '-'} | {r['cpu']:.2f} | {ratio(r['cpu'], base['cpu']) if base else '-'} "
              f"| {r['rss']:.0f} | {ratio(r['rss'], base['rss']) if base else '-'} | {r['server']:.2f} | {r['ok']}/{r['rounds']} |")
small_c, small_o = by.get("cairn:small"), by.get("obstore:small")
if small_c and small_o:
    x = small_o["wall"] / small_c["wall"]
    print(f"\ncairn's 16 KiB GET rate is {x:.2f}x obstore's (target 1.2x: {'met' if x >= 1.2 else 'not met'}).")
EOF
}

main() {
  start_s3s_fs
  log "seeding $N_SMALL x $SMALL_BYTES B and one $LARGE_MIB MiB object"
  flock -o "$BENCH_LOCK" timeout -k 10 "$TIMEOUT" "$PYBIN" "$HERE/client.py" seed >"$WORK/seed.json"
  local tools sc round i
  read -r -a tools <<<"$TOOLS"
  for round in $(seq 0 $((REPEAT - 1))); do
    for sc in $SCENARIOS; do
      for i in "${!tools[@]}"; do run_one "${tools[$(((i + round) % ${#tools[@]}))]}" "$sc"; done
    done
  done
  if ! grep -q "nodelay:" "$WORK/server.log"; then
    log "TCP_NODELAY shim did not report: small GETs may include Nagle stalls"
  fi
  {
    echo "Server: $SERVER_NAME on 127.0.0.1. Data: $N_SMALL x $SMALL_BYTES B objects ($CONCURRENCY GETs in flight), one $LARGE_MIB MiB object (LARGE_READ=$LARGE_READ, CHUNK_MIB=$CHUNK_MIB). Medians of $REPEAT round(s), tool order rotated each round; each command limited to $TIMEOUT s."
    echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr). Checkout: $(git -C "$ROOT" rev-parse --short HEAD) (the cairn measured is the one $PYTHON imports)."
    echo "Load average (1 min) when each measurement took the lock: $("$PYBIN" -c 'import json, sys; l = sorted(json.loads(x).get("load1", -1) for x in open(sys.argv[1])); print(f"median {l[len(l) // 2]:.1f}, min {l[0]:.1f}, max {l[-1]:.1f}")' "$RESULTS") (others' work outside the lock runs beside it)."
    echo "Versions: $("$PYBIN" -c 'import sys, importlib.metadata as m; print("Python %s; cairn %s; obstore %s; boto3 %s" % (sys.version.split()[0], m.version("cairn"), m.version("obstore"), m.version("boto3")))')"
    echo
    table
  } | tee "$WORK/table.md"
  log "results: $RESULTS, table: $WORK/table.md"
}

main "$@"
