"""Deterministic data: seeded text, incompressible byte streams, stamped dirs.

Everything is a pure function of a seed string, so two machines generate
byte-identical workloads without downloading anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
from pathlib import Path

CHUNK = 1 << 20

WORDS = (
    "alpha beta gamma delta layer image build cache digest manifest config "
    "registry blob push pull stage copy run env label workdir user volume "
    "expose entrypoint healthcheck shell arg from target context ignore "
    "snapshot overlay upper lower whiteout opaque tar gzip zstd sha256"
).split()


def rng(seed: str) -> random.Random:
    return random.Random(hashlib.sha256(seed.encode()).digest())


def random_chunk(seed: str, index: int, size: int = CHUNK) -> bytes:
    """Incompressible bytes: SHAKE-128 of (seed, chunk index)."""
    return hashlib.shake_128(f"{seed}/{index}".encode()).digest(size)


def random_stream(seed: str, size: int):
    """Yield `size` incompressible bytes in chunks of at most 1 MiB."""
    index = 0
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield random_chunk(seed, index, n)
        index += 1
        left -= n


class RandomReader:
    """A file-like `read()` over `random_stream`, for tarfile.addfile."""

    def __init__(self, seed: str, size: int):
        self._it = random_stream(seed, size)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def write_random_file(path: Path, size: int, seed: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for chunk in random_stream(seed, size):
            f.write(chunk)


def write_filler_file(path: Path, size: int, seed: str) -> None:
    """Real (non-sparse) bytes, cheap to produce: one random MiB repeated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = random_chunk(seed, 0)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def text(r: random.Random, size: int) -> bytes:
    """Source-like text of exactly `size` bytes."""
    out = []
    n = 0
    line = []
    while n < size:
        w = r.choice(WORDS)
        line.append(w)
        n += len(w) + 1
        if len(line) >= 10:
            out.append(" ".join(line) + "\n")
            line = []
    if line:
        out.append(" ".join(line) + "\n")
    data = "".join(out).encode()[:size]
    return data


def write_text_tree(root: Path, seed: str, files: int, per_dir: int,
                    min_size: int, max_size: int, ext: str = ".txt") -> None:
    """`files` text files in `files / per_dir` directories under root."""
    r = rng(seed)
    for i in range(files):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}{ext}").write_bytes(text(r, r.randint(min_size, max_size)))


def _stamp_path(dir: Path) -> Path:
    # Beside the directory, not in it: a build context must hold only the workload.
    return dir.with_name(dir.name + ".stamp")


def stamped(dir: Path, params: dict) -> bool:
    """True when `dir` was generated with exactly `params`."""
    try:
        return dir.is_dir() and json.loads(_stamp_path(dir).read_text()) == params
    except (OSError, ValueError):
        return False


def read_tree(root: Path) -> int:
    """Reads every regular file under `root` (untimed) so that it is in the page cache: the
    contender that runs first would otherwise read a context or a registry's blobs from disk
    and the others from memory (with 1 run per scaling size, kiln, run first, always paid).
    Returns the bytes read."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue  # links, fifos (opening one would block), devices
                with open(path, "rb", buffering=0) as f:
                    while chunk := f.read(1 << 20):
                        total += len(chunk)
            except OSError:
                continue
    return total


def fresh_dir(dir: Path) -> None:
    _stamp_path(dir).unlink(missing_ok=True)
    shutil.rmtree(dir, ignore_errors=True)
    dir.mkdir(parents=True)


def stamp(dir: Path, params: dict) -> None:
    _stamp_path(dir).write_text(json.dumps(params, sort_keys=True))
