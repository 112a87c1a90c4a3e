#!/usr/bin/env bash
# Initial apply of 10,000 users and 500 groups (with memberships) into the in-process Graph
# emulator, time-scaled x100, twice: the documented write budget (3,000 / 150 s) and a tenth
# of it (burst and rate), the client knowing only the documented one. Prints achieved/allowed
# writes per second, HTTP requests per create (goal <= 1/18), 429s per 1,000 writes and
# requests that arrived before a Retry-After instant (goal 0).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --example bench_apply -- "$@"
