#!/usr/bin/env bash
# Upload blobs to a registry the plain way, all blobs concurrently:
#   POST /v2/<repo>/blobs/uploads/  ->  streamed PATCH of the file  ->  PUT ?digest=
# This is the ceiling a push client can reach against this registry.
# usage: raw-push.sh REGISTRY_URL REPO BLOB_FILE...   (file names are their sha256)
set -euo pipefail
url=$1 repo=$2
shift 2

location() { tr -d '\r' | awk 'tolower($1)=="location:" {print $2}' | tail -n1; }
absolute() { case $1 in http*) echo "$1" ;; *) echo "$url$1" ;; esac; }

upload() {
  local file=$1 digest loc
  digest=sha256:$(basename "$file")
  loc=$(curl -fsS -o /dev/null -D - -X POST "$url/v2/$repo/blobs/uploads/" | location)
  loc=$(absolute "$loc")
  loc=$(curl -fsS -o /dev/null -D - -X PATCH -H 'Content-Type: application/octet-stream' \
        -T "$file" "$loc" | location)
  loc=$(absolute "$loc")
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -o /dev/null -X PUT -H 'Content-Length: 0' "$loc${sep}digest=$digest"
}
upload_or_say() { upload "$1" || { echo "upload of $1 to $url/v2/$repo failed" >&2; return 1; }; }

pids=()
for f in "$@"; do upload_or_say "$f" & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
