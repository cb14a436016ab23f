#!/usr/bin/env bash
# The whole test suite: installs the Debian packages the tests use, then runs every test.
# Tests that need root, namespaces or a registry start what they need themselves (the registry
# tests spawn the real `docker-registry` binary on loopback) and fail, not skip, under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --workspace --all-targets
# The benchmark harness's own tests (it never times anything here).
python3 -m unittest discover -s bench/tests -t bench
cargo test --workspace --no-fail-fast
