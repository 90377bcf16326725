#!/usr/bin/env bash
# Kill or (re)start one node of the 3-node Garage cluster that
# scripts/servers/start.sh runs, for node-loss tests.
# Usage: scripts/servers/garage-node.sh start|up|kill|pid N DIR
#   N: 1, 2 or 3. DIR: $CAIRN_TEST_GARAGE3_DIR (node N's config is DIR/nodeN.toml).
#   kill sends SIGKILL and waits until the process is gone; start launches the
#   node on its old state and waits until it answers RPC and every running peer
#   sees it healthy (30 s at most); up starts it only if it is not running; pid
#   prints its pid. Each start is recorded in DIR/../pids, so stop.sh stops it.
set -euo pipefail

cmd="${1:?usage: garage-node.sh start|kill|pid N DIR}"
n="${2:?usage: garage-node.sh start|kill|pid N DIR}"
dir="${3:?usage: garage-node.sh start|kill|pid N DIR}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cfg="$dir/node$n.toml"
pidf="$dir/node$n.pid"
[ -f "$cfg" ] || {
  echo "garage-node: no config $cfg (is $dir a garage3 dir from start.sh?)" >&2
  exit 2
}

alive() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

case "$cmd" in
up | start)
  if alive && [ "$cmd" = up ]; then exit 0; fi
  if alive; then
    echo "garage-node: node $n already runs (pid $(cat "$pidf"))" >&2
    exit 1
  fi
  DETACH=()
  if command -v setsid >/dev/null 2>&1; then DETACH=(setsid); fi
  # A restarted node outlives its caller: it must not inherit the caller's open files
  # (a `flock` on the build lock, held by whoever ran the test, would never be released).
  (
    for fd in /proc/self/fd/*; do
      fd="${fd##*/}"
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec ${DETACH[@]+"${DETACH[@]}"} garage -c "$cfg" server </dev/null >>"$dir/node$n.log" 2>&1
  ) &
  echo $! >"$pidf"
  echo "garage $!" >>"$dir/../pids"
  # Up once its RPC answers and every running peer lists it as healthy: peers
  # back off before redialling a lost node, so dial them both ways at once.
  for _ in $(seq 120); do
    alive || break
    if garage -c "$cfg" status >/dev/null 2>&1; then
      healthy=1
      for m in 1 2 3; do
        # (No id files yet while start.sh first brings the cluster up.)
        [ "$m" != "$n" ] && [ -f "$dir/node$n.id" ] && [ -f "$dir/node$m.id" ] || continue
        kill -0 "$(cat "$dir/node$m.pid")" 2>/dev/null || continue
        garage -c "$cfg" node connect "$(cat "$dir/node$m.id")" >/dev/null 2>&1 || true
        garage -c "$dir/node$m.toml" node connect "$(cat "$dir/node$n.id")" >/dev/null 2>&1 || true
        garage -c "$dir/node$m.toml" status 2>/dev/null |
          sed '/FAILED NODES/q' | grep -q "^$(cut -c1-16 "$dir/node$n.id") " || healthy=0
      done
      if [ "$healthy" = 1 ]; then
        echo "garage-node: node $n up (pid $(cat "$pidf"))" >&2
        exit 0
      fi
    fi
    sleep 0.25
  done
  echo "garage-node: node $n did not come up; last log lines:" >&2
  tail -n 20 "$dir/node$n.log" >&2
  exit 1
  ;;
kill)
  alive || {
    echo "garage-node: node $n is not running" >&2
    exit 1
  }
  pid="$(cat "$pidf")"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "garage-node: node $n (pid $pid) killed" >&2
  ;;
pid) cat "$pidf" ;;
*)
  echo "garage-node: unknown command '$cmd' (start, kill or pid)" >&2
  exit 2
  ;;
esac
