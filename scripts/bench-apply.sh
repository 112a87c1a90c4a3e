#!/usr/bin/env bash
# Initial apply of 10,000 users and 500 groups (with memberships) into the in-process Graph
# emulator, write budget 3,000 / 150 s time-scaled x100. Prints achieved/allowed writes per
# second (goal >= 0.9), HTTP requests per create (goal <= 1/18) and 429s after the first (goal 0).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --example bench_apply -- "$@"
