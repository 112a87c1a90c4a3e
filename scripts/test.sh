#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls it).
#
# Starts a real Samba AD domain controller on loopback (installing Samba from Debian's
# packages when missing), runs every test of the workspace against it and the built-in
# Graph emulator, runs the demo policy's own tests, and stops the DC again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DC_DIR=${AD2ENTRA_TEST_DC_DIR:-$PWD/.test-dc}
started=0
cleanup() {
  if [ "$started" = 1 ]; then
    scripts/stop-test-dc.sh -d "$DC_DIR" >&2 || true
  fi
}
trap cleanup EXIT

echo "== starting the test domain controller ($DC_DIR)" >&2
scripts/test-dc.sh -d "$DC_DIR" >/dev/null
started=1
export AD2ENTRA_TEST_DC_ENV="$DC_DIR/connection.env"

echo "== building" >&2
cargo build --workspace --all-targets

echo "== policy tests of the demo (ad2entra test)" >&2
./target/debug/ad2entra test --policy examples/demo/policy.yaml

echo "== workspace tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
