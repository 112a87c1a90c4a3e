#!/usr/bin/env bash
# Benchmark of planning at the design size: 100,000 users, 5,000 groups and 500,000
# memberships from LDIF, against (a) an empty tenant (everything to create) and (b) a
# tenant already in step (nothing to do). Prints wall time and peak RSS of each, and the
# ratio to a baseline measured in the same run: loading the same LDIF and nothing else.
#
#   scripts/bench-plan.sh            # generates target/bench/ad-100k.ldif when missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null

ldif=target/bench/ad-100k.ldif
[ -f "$ldif" ] || scripts/gen-bench-data.sh >/dev/null
policy=examples/demo/policy.yaml
cargo build --release --quiet --bin ad2entra --example ldif_load --example converged_snapshot

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"users": [], "groups": []}' > "$tmp/empty.json"
target/release/examples/converged_snapshot "$policy" "$ldif" "$tmp/converged.json"

measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  read -r wall rss < "$tmp/t"
  printf '%s %s %s\n' "$name" "$wall" "$rss" >> "$tmp/results"
}

measure baseline-ldif-load target/release/examples/ldif_load "$ldif"
measure plan-empty-tenant target/release/ad2entra plan --policy "$policy" --source-ldif "$ldif" --target-snapshot "$tmp/empty.json" --format json --out "$tmp/plan.json"
measure plan-converged target/release/ad2entra plan --policy "$policy" --source-ldif "$ldif" --target-snapshot "$tmp/converged.json" --format json

awk 'NR==1 {bw=$2; bm=$3}
     {printf "%-20s wall %6.2f s (x%.2f of baseline)   peak RSS %7.1f MB (x%.2f)\n", $1, $2, $2/bw, $3/1024, $3/bm}' "$tmp/results"
echo "empty-tenant plan: $(grep -m1 -A12 '"summary"' "$tmp/plan.json" | tr -d ' \n')"
