#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls it).
#
# Starts two real Samba AD domain controllers on loopback (installing Samba from Debian's
# packages when missing): CORP.EXAMPLE.COM, and BRANCH.EXAMPLE.NET as a second forest for
# the tests of several sources. Runs every test of the workspace against them and the
# built-in Graph emulator, runs the demo policy's own tests, and stops the DCs again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DC_DIR=${AD2ENTRA_TEST_DC_DIR:-$PWD/.test-dc}
DC2_DIR=${AD2ENTRA_TEST_DC2_DIR:-$PWD/.test-dc2}
DC2_PORT=${AD2ENTRA_TEST_DC2_PORT:-3589}
started=0
started2=0
cleanup() {
  if [ "$started2" = 1 ]; then
    scripts/stop-test-dc.sh -d "$DC2_DIR" >&2 || true
  fi
  if [ "$started" = 1 ]; then
    scripts/stop-test-dc.sh -d "$DC_DIR" >&2 || true
  fi
}
trap cleanup EXIT

echo "== starting the test domain controller ($DC_DIR)" >&2
scripts/test-dc.sh -d "$DC_DIR" >/dev/null
started=1
export AD2ENTRA_TEST_DC_ENV="$DC_DIR/connection.env"

echo "== starting a second domain controller, another forest ($DC2_DIR, port $DC2_PORT)" >&2
scripts/test-dc.sh -d "$DC2_DIR" -p "$DC2_PORT" --realm BRANCH.EXAMPLE.NET --seed-users 10 >/dev/null
started2=1
export AD2ENTRA_TEST_DC2_ENV="$DC2_DIR/connection.env"

# tests/gitops*.rs: ssh-keygen signs commits and makes keys; tests/gitops_ssh.rs starts its
# own sshd on a loopback port. The package's service is kept from starting system-wide.
if ! command -v ssh-keygen >/dev/null 2>&1 || [ ! -x /usr/sbin/sshd ]; then
  echo "== installing openssh-client and openssh-server (sshd is not started as a service)" >&2
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends openssh-client openssh-server >&2
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

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
