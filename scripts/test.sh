#!/usr/bin/env bash
# Runs every test of tidings: the Rust unit and property tests of each crate, then the end-to-end
# tests (tests/, pytest) that drive the real binary with real clients over loopback.
# .venv-tools holds programs the tests run (schemathesis), apart from pytest's own packages.
#
# Needs: the Rust toolchain, python3 with venv, curl. Creates .venv with the pinned packages of
# tests/requirements.txt on first use (and again when that file changes).
# Extra arguments go to pytest, e.g. scripts/test.sh -k pop3
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --locked
cargo test --workspace --locked

# venv DIR REQUIREMENTS: makes DIR a venv with the pinned packages of REQUIREMENTS (again when the
# file changes).
venv() {
  local stamp="$1/requirements.sha256" want
  want=$(sha256sum "$2" | cut -d' ' -f1)
  if [ ! -x "$1/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
    echo "$want" > "$stamp"
  fi
}
venv .venv tests/requirements.txt
venv .venv-tools tests/tools-requirements.txt
exec .venv/bin/python -m pytest "$@"
