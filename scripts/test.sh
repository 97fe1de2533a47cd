#!/usr/bin/env bash
# Runs every test of tidings: the Rust unit and property tests of each crate, then the end-to-end
# tests (tests/, pytest) that drive the real binary with real clients over loopback.
#
# Needs: the Rust toolchain, python3 with venv, curl. Creates .venv with the pinned packages of
# tests/requirements.txt on first use (and again when that file changes).
# Extra arguments go to pytest, e.g. scripts/test.sh -k pop3
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --locked
cargo test --workspace --locked

stamp=.venv/requirements.sha256
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
exec .venv/bin/python -m pytest "$@"
