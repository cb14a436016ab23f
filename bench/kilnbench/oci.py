"""Write OCI image layouts directly (no tool involved), deterministically.

Used for the busybox base image and for the synthetic transfer images of the
scaling figures. Each layer is streamed: tar -> sha256 (diff_id) -> gzip ->
sha256 (digest) -> blob file, so a 1 GiB layer never sits in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import gen

EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class _HashingSink(io.RawIOBase):
    """Write-through that hashes and counts what passes."""

    def __init__(self, target):
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.sha.update(b)
        self.size += len(b)
        self.target.write(b)
        return len(b)


@dataclass
class Blob:
    digest: str
    size: int


def _put_blob_bytes(layout: Path, data: bytes) -> Blob:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest[7:]
    path.write_bytes(data)
    return Blob(digest, len(data))


def _write_layer(layout: Path, fill: Callable[[tarfile.TarFile], None]) -> tuple[Blob, str]:
    tmp = layout / "blobs" / "sha256" / ".partial"
    with open(tmp, "wb") as raw:
        compressed = _HashingSink(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as gz:
            plain = _HashingSink(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                fill(tar)
    digest = "sha256:" + compressed.sha.hexdigest()
    os.replace(tmp, layout / "blobs" / "sha256" / digest[7:])
    return Blob(digest, compressed.size), "sha256:" + plain.sha.hexdigest()


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    tar.addfile(_info(name, tarfile.DIRTYPE, mode))


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    tar.addfile(_info(name, size=len(data), mode=mode), io.BytesIO(data))


def add_random(tar: tarfile.TarFile, name: str, size: int, seed: str) -> None:
    tar.addfile(_info(name, size=size), gen.RandomReader(seed, size))


def add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    ti = _info(name, tarfile.SYMTYPE, 0o777)
    ti.linkname = target
    tar.addfile(ti)


def write_layout(layout: Path, tag: str, layers: list[Callable[[tarfile.TarFile], None]],
                 cmd: list[str] | None = None) -> str:
    """Write an OCI layout at `layout` with one image tagged `tag`; return the manifest digest."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    blobs, diff_ids = [], []
    for fill in layers:
        blob, diff_id = _write_layer(layout, fill)
        blobs.append(blob)
        diff_ids.append(diff_id)
    config = {
        "created": CREATED,
        "architecture": arch(),
        "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": cmd or ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "kiln-bench generated layer"}
                    for _ in layers],
    }
    cfg = _put_blob_bytes(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cfg.digest, "size": cfg.size},
        "layers": [{"mediaType": MT_LAYER_GZ, "digest": b.digest, "size": b.size} for b in blobs],
    }
    man = _put_blob_bytes(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MT_MANIFEST, "digest": man.digest, "size": man.size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
    return man.digest


def layout_blobs(layout: Path) -> list[Path]:
    """Config and layer blob files of the single image in `layout` (for raw curl transfers)."""
    index = json.loads((layout / "index.json").read_text())
    man_digest = index["manifests"][0]["digest"]
    blob_dir = layout / "blobs" / "sha256"
    manifest = json.loads((blob_dir / man_digest[7:]).read_text())
    digests = [manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]
    return [blob_dir / d.split(":", 1)[1] for d in digests]


def busybox_layer(busybox: Path) -> Callable[[tarfile.TarFile], None]:
    """A base layer from a static busybox: the binary, applet symlinks, /etc basics."""
    import subprocess

    applets = subprocess.run([str(busybox), "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    data = busybox.read_bytes()

    def fill(tar: tarfile.TarFile) -> None:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var"):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_bytes(tar, "bin/busybox", data, 0o755)
        for path in sorted(set(applets)):
            if path != "bin/busybox":
                add_symlink(tar, path, "/bin/busybox")
        add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                  b"app:x:1000:1000:app:/home/app:/bin/sh\n")
        add_bytes(tar, "etc/group", b"root:x:0:\napp:x:1000:\n")
    return fill
