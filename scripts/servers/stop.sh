#!/usr/bin/env bash
# Stop the servers started by scripts/servers/start.sh and delete their state.
# Usage: scripts/servers/stop.sh ENV_FILE_OR_STATE_DIR
# Safe to run twice; only kills PIDs recorded by start.sh that still look like
# our servers (guards against PID reuse), and only deletes a dir carrying
# start.sh's marker file.
set -euo pipefail

arg="${1:?usage: stop.sh ENV_FILE_OR_STATE_DIR}"
log() { printf 'servers: %s\n' "$*" >&2; }

if [ -d "$arg" ]; then
  state="$arg"
elif [ -f "$arg" ]; then
  # Read only the state dir from the env file rather than sourcing all of it.
  state="$(sed -n 's/^export CAIRN_TEST_SERVERS_STATE=//p' "$arg" | tail -n 1)"
  # Values are written with printf %q; our mktemp paths need no unquoting,
  # but undo simple quoting just in case.
  state="${state#\'}"
  state="${state%\'}"
else
  log "nothing to stop: $arg does not exist"
  exit 0
fi

if [ -z "$state" ] || [ ! -f "$state/.cairn-servers" ]; then
  log "not a cairn server state dir: '$state'; leaving it alone"
  exit 1
fi

# Is PID alive and still the process named NAME (moto or garage)?
ours() {
  [ -r "/proc/$2/cmdline" ] && tr '\0' ' ' <"/proc/$2/cmdline" | grep -q "$1"
}

pids=()
if [ -f "$state/pids" ]; then
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if ours "$name" "$pid"; then
      # start.sh runs each server as a process group leader: signal the group.
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$name:$pid")
    fi
  done <"$state/pids"
fi

# Give them 5 s to exit cleanly, then SIGKILL what is left.
for _ in $(seq 50); do
  left=0
  for np in ${pids[@]+"${pids[@]}"}; do
    if ours "${np%%:*}" "${np#*:}"; then left=1; fi
  done
  [ "$left" = 0 ] && break
  sleep 0.1
done
for np in ${pids[@]+"${pids[@]}"}; do
  if ours "${np%%:*}" "${np#*:}"; then
    log "killing ${np%%:*} (pid ${np#*:}) with SIGKILL"
    kill -KILL -- "-${np#*:}" 2>/dev/null || kill -KILL "${np#*:}" 2>/dev/null || true
  fi
done

rm -rf "$state"
if [ -f "$arg" ]; then rm -f "$arg"; fi
log "stopped ${pids[*]:-nothing} and removed $state"
