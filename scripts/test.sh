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
status=0
cargo test --workspace --no-fail-fast || status=1
# The RUN-related suites again as a non-root user with subordinate ids (rootless kiln). It
# needs root to create that user; elsewhere it is skipped with a note, never under CI=true.
if [ "$(id -u)" = 0 ] || [ "${CI:-}" = true ]; then
    scripts/test-rootless.sh || status=1
else
    echo "note: skipping scripts/test-rootless.sh (needs root to switch to a test user)" >&2
fi
exit $status
