# Sourced by bench scripts: s3s-fs 0.14.1 on 127.0.0.1 with TCP_NODELAY, its data on tmpfs by
# default. The caller sets ROOT, WORK, PYBIN or PYTHON (an interpreter, for the port helpers), AK, SK,
# SERVER_DATA (shm|disk) and a `log` function; SHM_TAG names the tmpfs directory.
#
# s3s_fs_start sets S3_ROOT (the served directory: a bucket is a directory in it), SHM_DIR
# (to remove at exit; empty on disk), SERVER_PID, ENDPOINT and SERVER_NAME, and returns 1 if
# the server cannot start (a caller may fall back to another server).

free_port() { "${PYBIN:-$PYTHON}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 100); do
    if "${PYBIN:-$PYTHON}" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

s3s_fs_start() {
  if ! command -v s3s-fs >/dev/null; then
    log "installing s3s-fs 0.14.1"
    CARGO_INCREMENTAL=0 flock -o /tmp/cargo.lock env -u CARGO_TARGET_DIR \
      cargo install s3s-fs --version 0.14.1 --features binary --locked -q || return 1
  fi
  # s3s-fs does not set TCP_NODELAY itself; the shim sets it on every accepted socket.
  cc -shared -fPIC -O2 -o "$WORK/nodelay.so" "$ROOT/bench/peers/nodelay.c" -ldl || return 1
  local port where
  port="$(free_port)"
  # On tmpfs by default: s3s-fs writes every object to a temp file and renames it, and on a
  # disk the writeback of those files (and ext4's journal) varies from round to round and
  # sets the pace of the small-file rows; the clients, not the server's disk, are measured.
  case "$SERVER_DATA" in
    shm)
      SHM_DIR="$(mktemp -d "/dev/shm/cairn-${SHM_TAG:-bench}-server.XXXXXX")"
      S3_ROOT="$SHM_DIR/s3" where="tmpfs"
      ;;
    disk) SHM_DIR="" S3_ROOT="$WORK/s3" where="disk" ;;
    *) log "SERVER_DATA must be shm or disk, not $SERVER_DATA"; exit 1 ;;
  esac
  mkdir -p "$S3_ROOT"
  LD_PRELOAD="$WORK/nodelay.so" NODELAY_LOG=1 s3s-fs --host 127.0.0.1 --port "$port" \
    --access-key "$AK" --secret-key "$SK" "$S3_ROOT" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  export SERVER_PID
  wait_port "$port" || { log "s3s-fs did not start:"; tail -n 20 "$WORK/server.log" >&2; return 1; }
  export ENDPOINT="http://127.0.0.1:$port"
  SERVER_NAME="s3s-fs 0.14.1 (TCP_NODELAY via LD_PRELOAD shim; data on $where)"
}
