#!/bin/sh
# Runs kiln's RUN-related tests as a non-root user with subordinate ids (issue 3: "the same
# suite passes rootful and rootless").
#
# As root: creates the user kiln-test (KILN_TEST_USER) with /etc/subuid and /etc/subgid
# ranges if missing, builds the test binaries as root, then runs them as that user with its
# own HOME and TMPDIR. The binaries, the kiln binary and testdata/ only need to be readable.
#
#   scripts/test-rootless.sh                 # the RUN-related test targets (and lib tests)
#   scripts/test-rootless.sh --setup-only    # only create the user and its ranges
#   scripts/test-rootless.sh TARGET...       # e.g. build_golden sandbox_linux lib
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

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
if [ $# -gt 0 ]; then
    targets="$*"
else
    # CLI tests run kiln as the user (kiln enters its namespace itself); the library tests
    # (sandbox, snapshotters, unpack) run inside `kiln unshare`, the namespace kiln uses.
    targets="lib build_golden build_features build_cache build_mounts run_command \
        sandbox_linux sandbox_snapshot sandbox_attach snapshot_diff snapshot_parents cache_store"
fi

cd "$repo"
args=""
for t in $targets; do
    if [ "$t" = lib ]; then args="$args --lib"; else args="$args --test $t"; fi
done
# Build as root, then list the test executables cargo made (and the kiln binary).
# shellcheck disable=SC2086
cargo test --no-run --workspace $args --message-format=json-render-diagnostics >"$home/.kiln-test-build.json"
python3 -c '
import json, os, sys
kiln, tests = None, []
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if m["profile"]["test"]:
        tests.append((m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"]))
    elif m["target"]["name"] == "kiln":
        kiln = m["executable"]
for name, crate, exe in tests:
    print(name, crate, exe, kiln)
' "$home/.kiln-test-build.json" >"$home/.kiln-test-binaries"

tmp="$home/tmp"
mkdir -p "$tmp"
chown "$user:" "$tmp"
# The user must reach the binaries and the repo (read-only). A CI clone may sit under a
# private home (e.g. /root): there, let others traverse (not list) its ancestors.
if [ "${CI:-}" = true ]; then
    d=$repo
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        runuser -u "$user" -- test -x "$d" || chmod o+x "$d"
    done
fi
if ! runuser -u "$user" -- test -r "$repo/testdata/build" -a -x "$CARGO_TARGET_DIR"; then
    echo "test-rootless.sh: $user cannot read $repo or $CARGO_TARGET_DIR" >&2
    exit 2
fi
status=0
failed=""
while read -r name crate exe kiln; do
    case "$crate" in
    */cli) wrap="" ;;
    *) wrap="$kiln unshare --" ;;
    esac
    echo "== $name (as $user${wrap:+, in kiln unshare})"
    # shellcheck disable=SC2086
    if ! runuser -u "$user" -- env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        HOME="$home" USER="$user" TMPDIR="$tmp" CI="${CI:-}" KILN_ROOTLESS_TEST=1 \
        sh -c 'cd "$1" && shift && exec "$@" --test-threads=1' _ "$crate" $wrap "$exe"; then
        status=1
        failed="$failed $name"
    fi
done <"$home/.kiln-test-binaries"
[ $status = 0 ] || echo "test-rootless.sh: failed as $user:$failed" >&2
exit $status
