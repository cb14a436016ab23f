#!/bin/sh
# Runs kiln's RUN-related tests as a non-root user with subordinate ids (issue 3: "the same
# suite passes rootful and rootless").
#
# As root: creates the user kiln-test (KILN_TEST_USER) with /etc/subuid and /etc/subgid
# ranges if missing, builds the test binaries as root, then runs them as that user with its
# own HOME and TMPDIR. The binaries, the kiln binary and testdata/ only need to be readable.
#
#   scripts/test-rootless.sh                 # the RUN-related test targets
#   scripts/test-rootless.sh --setup-only    # only create the user and its ranges
#   scripts/test-rootless.sh TARGET...       # e.g. build_golden sandbox_linux
#
# (rootless_build is not among them: it runs as root and switches users itself.)
# CI=true is passed through, so tests that cannot run rootless fail instead of skipping.
set -eu

user=${KILN_TEST_USER:-kiln-test}
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "test-rootless.sh: run as root (it creates $user and switches to it)" >&2
    exit 2
fi

if ! id -u "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "$home"
chown "$user:" "$home"

# A 65536-id range after every range already given out, in both files.
for f in /etc/subuid /etc/subgid; do
    touch "$f"
    if ! grep -q "^$user:" "$f"; then
        start=$(awk -F: 'BEGIN { m = 100000 } NF >= 3 { e = $2 + $3; if (e > m) m = e } END { print m }' /etc/subuid /etc/subgid)
        echo "$user:$start:65536" >>"$f"
    fi
done

[ "${1:-}" = "--setup-only" ] && exit 0

command -v newuidmap >/dev/null || {
    echo "test-rootless.sh: newuidmap missing (apt-get install uidmap)" >&2
    exit 2
}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target/rootless}
if [ $# -gt 0 ]; then
    targets="$*"
else
    targets="build_golden build_features sandbox_linux sandbox_snapshot snapshot_diff"
fi

# RUN cases copy the host's busybox into their context; do it now, the user cannot write there.
for case in "$repo"/testdata/build/*/; do
    if [ -e "$case/needs-busybox" ] && [ ! -e "$case/context/busybox" ]; then
        mkdir -p "$case/context"
        cp /bin/busybox "$case/context/busybox"
    fi
done

cd "$repo"
args=""
for t in $targets; do args="$args --test $t"; done
# Build as root, then list the test executables cargo made.
# shellcheck disable=SC2086
cargo test --no-run --workspace $args --message-format=json-render-diagnostics >"$home/.kiln-test-build.json"
python3 -c '
import json, os, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        crate = os.path.dirname(m["manifest_path"])
        print(m["target"]["name"], crate, m["executable"])
' "$home/.kiln-test-build.json" >"$home/.kiln-test-binaries"

tmp="$home/tmp"
mkdir -p "$tmp"
chown "$user:" "$tmp"
status=0
while read -r name crate exe; do
    echo "== $name (as $user)"
    if ! runuser -u "$user" -- env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        HOME="$home" USER="$user" TMPDIR="$tmp" CI="${CI:-}" KILN_ROOTLESS_TEST=1 \
        sh -c 'cd "$1" && exec "$2" --test-threads=1' _ "$crate" "$exe"; then
        status=1
    fi
done <"$home/.kiln-test-binaries"
exit $status
