#!/usr/bin/env bash
# Installs what kiln's build and tests need on Debian 12: the Rust toolchain is assumed present
# (rustup); the peers and services the tests use come from Debian.
set -euo pipefail
packages=(
  buildah skopeo umoci runc        # peers the tests cross-check against
  docker-registry apache2-utils    # a real registry, htpasswd for its Basic auth
  busybox-static                   # base images for tests: FROM scratch + COPY busybox
  uidmap                           # newuidmap/newgidmap for rootless sandboxes
  hyperfine time pigz openssl      # benchmarks (pigz, openssl: bench/run's primitives peers)
  zstd xz-utils bzip2              # test archives for ADD
  git                              # ADD <git URL>; its tests serve repos with git daemon
  fuse-overlayfs                   # rootless overlay fallback checks
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
