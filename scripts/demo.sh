#!/usr/bin/env bash
# The main job on a bundled example: builds kiln, then builds testdata/examples/hello into a
# fresh store, shows it, rebuilds it, and exports it as an OCI layout. No registry needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p kiln
kiln=$PWD/target/release/kiln
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r testdata/examples/hello "$work/ctx"
cp /bin/busybox "$work/ctx/busybox"
export KILN_ROOT="$work/store"

echo "== kiln build -t hello:latest"
time "$kiln" build -t hello:latest --progress plain "$work/ctx"
echo "== kiln images"
"$kiln" images
echo "== kiln history hello"
"$kiln" history hello
echo "== kiln inspect hello: RootFS and Config"
"$kiln" inspect --format '{{json .RootFS}}' hello
"$kiln" inspect --format '{{json .Config}}' hello
echo "== export as an OCI layout; skopeo reads it"
"$kiln" build -q --output "type=oci,dest=$work/oci,tar=false" -t hello:latest "$work/ctx" >/dev/null
skopeo inspect "oci:$work/oci:latest" | head -20
