#!/usr/bin/env bash
# The scale benchmark: ad2entra on a directory of N users (default 100,000), groups 5% of
# N and memberships 5× N, against a real Samba AD DC (LDAPS) and the Graph emulator
# seeded converged. Every figure is printed beside a baseline measured in the same run:
#
#   full cycle     `ad2entra plan` live (AD over LDAPS + Graph reads + plan) on the
#                  converged tenant, wall and peak RSS, against `ldapsearch` paged over
#                  the same entries and attributes and a plain HTTP client paging every
#                  user, group and member at $top=999, both run at the same time
#                  (best of --rounds runs each, interleaved)
#   run            `ad2entra run` over 10 cycles (forced full cycles and delta cycles in
#                  turn): peak RSS, and RSS after each cycle
#   delta cycle    the cycle AD change notifications start after 10 user and 10
#                  membership changes, against the reconciler's full cycle
#   pure planning  policy × both snapshots in memory → plan (peak RSS of that step)
#   initial load   scripts/bench-apply.sh's documented-budget run (10,000 users into an
#                  empty emulator, time-scaled)
#   growth         full cycle and pure planning at 10,000, 30,000 and 100,000 users
#                  (the sizes up to N, and N)
#
#   scripts/bench.sh [--users N] [--out FILE.json] [--keep] [--rounds R] [--port P]
#
# Run as root (Samba). Each size gets its own DC under $TMPDIR/ad2entra-bench/dc-N
# (seeded once with ldbadd in batch mode, then reused) on ports P.. (default 3689).
# Installs what it needs from Debian's packages (Samba, ldap-utils, time).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --users|--out|--rounds|--port|--cycles|--work) ARGS+=("$1" "$2"); shift 2 ;;
    --keep) ARGS+=("$1"); shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--users N] [--out FILE.json] [--keep] [--rounds R] [--port P]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (Samba)" >&2; exit 1; }
missing=()
command -v /usr/bin/time >/dev/null || missing+=(time)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[bench] installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
echo "[bench] building (release)" >&2
(cd "$ROOT" && cargo build -q --release -p ad2entra -p graph-emulator --bins \
  --example bench_scale --example bench_apply)
exec python3 "$HERE/bench_scale.py" --root "$ROOT" "${ARGS[@]}"
