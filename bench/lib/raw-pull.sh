#!/usr/bin/env bash
# Download blobs from a registry with curl, all concurrently, hashing each with
# sha256sum and checking it against its digest: the ceiling for a pull client.
# usage: raw-pull.sh REGISTRY_URL REPO DIGEST...
set -euo pipefail
url=$1 repo=$2
shift 2

fetch() {
  local digest=$1 sum
  sum=$(set -o pipefail; curl -fsS "$url/v2/$repo/blobs/$digest" | sha256sum | cut -d' ' -f1) ||
    { echo "GET $url/v2/$repo/blobs/$digest failed" >&2; return 1; }
  if [ "sha256:$sum" != "$digest" ]; then
    echo "digest mismatch for $digest: got sha256:$sum" >&2
    return 1
  fi
}

pids=()
for d in "$@"; do fetch "$d" & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
