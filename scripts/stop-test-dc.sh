#!/usr/bin/env bash
# Stops the test domain controller started by scripts/test-dc.sh: SIGTERM to the PIDs
# recorded in DIR/run (only after /proc/PID confirms they are still samba and the relay,
# so a recycled PID is never signalled), SIGKILL after 10 s. --purge also deletes DIR.
#
#   scripts/stop-test-dc.sh [-d DIR] [--purge]
set -euo pipefail

DIR=${AD2ENTRA_TEST_DC_DIR:-./.test-dc}
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--dir) DIR=$2; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) echo "usage: $0 [-d DIR] [--purge]" >&2; exit 2 ;;
    *) echo "stop-test-dc: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "[stop-test-dc] $*" >&2; }

# Prints the PID in file $1 if it is alive and /proc matches what we started ($2).
check_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  [ -d "/proc/$pid" ] || return 1
  case "$2" in
    samba) [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = samba ] || return 1 ;;
    forward) tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q dc-forward.py || return 1 ;;
  esac
  echo "$pid"
}

if [ -d "$DIR" ]; then
  pids=()
  for spec in "run/forward.pid:forward" "run/samba.pid:samba"; do
    file=$DIR/${spec%%:*}
    if pid=$(check_pid "$file" "${spec##*:}"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "sent SIGTERM to ${spec##*:} ($pid)"
    fi
    rm -f "$file"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      log "sent SIGKILL to $pid"
    fi
  done
  if [ "$PURGE" = 1 ]; then
    rm -rf "$DIR"
    log "removed $DIR"
  fi
else
  log "no such directory: $DIR"
fi
