#!/usr/bin/env bash
# Benchmarks the reconciler (`ad2entra run`) against a Samba AD DC with N users
# (default 10,000) and the Graph emulator, converged: a full cycle, a delta cycle after
# 10 user changes and 10 membership changes (LDAP entries read, Graph requests, wall
# time), and the latency from an AD modify to the Graph write over 20 changes (p50, p95).
#
#   scripts/bench-cycle.sh [--users N] [-d DIR] [-p PORT] [--debounce 5s] [--keep]
#
# The DC gets its own directory and port (default /tmp/ad2entra-bench-dc on 3489/3490),
# apart from the integration-test DC. Run as root (Samba).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USERS=10000
DIR=${TMPDIR:-/tmp}/ad2entra-bench-dc
PORT=3489
DEBOUNCE=5s
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS=$2; shift 2 ;;
    -d) DIR=$2; shift 2 ;;
    -p) PORT=$2; shift 2 ;;
    --debounce) DEBOUNCE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--users N] [-d DIR] [-p PORT] [--debounce 5s] [--keep]" >&2; exit 2 ;;
  esac
done
log() { echo "[bench-cycle] $*" >&2; }

if [ -f "$DIR/.seeded" ] && [ "$(cat "$DIR/.seeded")" != "$USERS" ]; then
  log "$DIR holds $(cat "$DIR/.seeded") users; purging it for $USERS"
  "$HERE/stop-test-dc.sh" -d "$DIR" --purge
fi
"$HERE/test-dc.sh" -d "$DIR" -p "$PORT" --seed-users "$USERS" >/dev/null
[ "$KEEP" = 1 ] || trap '"$HERE/stop-test-dc.sh" -d "$DIR" >/dev/null 2>&1 || true' EXIT

log "building (release)"
(cd "$ROOT" && cargo build -q --release -p ad2entra -p graph-emulator --bins)
python3 "$HERE/bench_cycle.py" --root "$ROOT" --dc-env "$DIR/connection.env" \
  --users "$USERS" --debounce "$DEBOUNCE"
