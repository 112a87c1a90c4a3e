#!/usr/bin/env bash
# Generates the benchmark directory: 100,000 users, 5,000 groups, 500,000 memberships
# as one AD-like LDIF in target/bench/ (not committed; ~195 MB, ~15 s, ~1.5 GB RAM for
# the Python generator). Only generates: measuring is done by the benchmarks, e.g.
#   cargo build --release --example ldif_load
#   /usr/bin/time -v target/release/examples/ldif_load target/bench/ad-100k.ldif
# Re-running with the same parameters rewrites a byte-identical file.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${BENCH_DIR:-$root/target/bench}"
users="${BENCH_USERS:-100000}"
groups="${BENCH_GROUPS:-5000}"
memberships="${BENCH_MEMBERSHIPS:-500000}"
seed="${BENCH_SEED:-7}"

mkdir -p "$out_dir"
out="$out_dir/ad-100k.ldif"
[[ "$users" == 100000 ]] || out="$out_dir/ad-${users}.ldif"
python3 "$root/scripts/gen-ldif.py" --users "$users" --groups "$groups" \
  --memberships "$memberships" --seed "$seed" \
  --out "$out.tmp" --summary "${out%.ldif}.summary.md"
mv "$out.tmp" "$out"
echo "$out"
