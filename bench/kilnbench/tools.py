"""Command lines for each contender, and the per-run state (store roots) they use.

Nothing here runs a timed command: these functions only build argv lists and
prepare or delete store directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "lib"


def _unmount_under(path: Path) -> None:
    """Lazily unmount anything a crashed tool left mounted below `path`."""
    prefix = str(path.resolve())
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for t in sorted((t for t in targets if t == prefix or t.startswith(prefix + "/")),
                    key=len, reverse=True):
        subprocess.run(["umount", "-l", t], stderr=subprocess.DEVNULL, check=False)


# Where removed stores wait until the comparison ends (see `defer_removals`).
_deferred: Path | None = None
_TRASH = ".trash"
# Below this much free space, removals happen at once after all.
MIN_FREE_BYTES = 10 << 30


def defer_removals(roots: Path | None) -> None:
    """Stores under `roots` that `remove_tree` removes are moved into `roots/.trash` instead,
    and deleted when the comparison ends (`purge_deferred`). A timed command must not pay for the
    deletion of the previous run's tens of thousands of files: on ext4 without a journal
    (this machine's root filesystem), each new inode allocated within minutes of a deletion
    in its block group is checked against the recently deleted ones (`recently_deleted()` in
    fs/ext4/ialloc.c), which made a 10k-file unpack 2 s slower right after a cleanup. Both
    contenders get the same treatment."""
    global _deferred
    _deferred = roots


def purge_deferred() -> None:
    """Deletes the stores waiting in the trash (between comparisons: letting gigabytes pile
    up for the whole run slowed later fsync-heavy pulls of both kiln and skopeo by 2.5x on
    this machine's disk)."""
    if _deferred is not None:
        shutil.rmtree(_deferred / _TRASH, ignore_errors=True)


def spread_stores(roots: Path) -> bool:
    """Marks `roots` as a top of a directory hierarchy (`chattr +T`, ext4's Orlov hint), so
    that each store made in it starts in a block group of its own instead of its parent's.
    On ext4 without a journal, a new inode is checked against every recently deleted one in
    its group; buildah removes its intermediate containers as it builds, and kiln's next run
    paid for those deletions (a 10k-file unpack 0.3 s became 1.1 s). Returns whether the
    flag was set (other filesystems ignore or refuse it, which is harmless)."""
    r = subprocess.run(["chattr", "+T", str(roots)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    return r.returncode == 0


def remove_tree(path: Path) -> None:
    if not path.exists():
        return
    _unmount_under(path)
    if _deferred is not None and _deferred in path.parents and _TRASH not in path.parts:
        trash = _deferred / _TRASH
        if shutil.disk_usage(_deferred).free >= MIN_FREE_BYTES:
            trash.mkdir(exist_ok=True)
            n = sum(1 for _ in trash.iterdir())
            try:
                path.rename(trash / f"{n}-{path.name}")
                return
            except OSError:
                pass  # e.g. a mount point: delete it now
        else:
            shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class BuildSpec:
    context: Path
    tag: str
    build_args: dict
    target: str | None = None
    dockerfile: Path | None = None


@dataclass
class Kiln:
    binary: Path

    def available(self) -> bool:
        return self.binary.is_file() and os.access(self.binary, os.X_OK)

    def _base(self, root: Path) -> list[str]:
        return [str(self.binary), "--root", str(root)]

    def build(self, root: Path, spec: BuildSpec) -> list[str]:
        argv = self._base(root) + ["build", "-t", spec.tag]
        if spec.dockerfile:
            argv += ["-f", str(spec.dockerfile)]
        for k, v in spec.build_args.items():
            argv += ["--build-arg", f"{k}={v}"]
        if spec.target:
            argv += ["--target", spec.target]
        return argv + [str(spec.context)]

    def push(self, root: Path, name: str, dest: str) -> list[str]:
        return self._base(root) + ["push", name, dest]

    def build_push(self, root: Path, spec: BuildSpec, dest: str) -> list[str]:
        """`build --push`: kiln's way to build and publish (layers upload while later steps
        run), as `docker buildx build --push` is Docker's."""
        # Only the destination as tag: --push pushes every -t name.
        argv = self.build(root, replace(spec, tag=dest))
        return argv[:-1] + ["--push", argv[-1]]

    def pull(self, root: Path, ref: str) -> list[str]:
        return self._base(root) + ["pull", ref]


@dataclass
class BuildahRoot:
    root: Path
    runroot: Path

    def remove(self) -> None:
        remove_tree(self.root)
        remove_tree(self.runroot)


class Buildah:
    """buildah with private storage (`--root`/`--runroot`) and chroot isolation."""

    binary = "buildah"

    @staticmethod
    def new_root(parent: Path, name: str) -> BuildahRoot:
        return BuildahRoot(parent / f"{name}.root", parent / f"{name}.runroot")

    def _base(self, r: BuildahRoot) -> list[str]:
        return [self.binary, "--root", str(r.root), "--runroot", str(r.runroot)]

    def build(self, r: BuildahRoot, spec: BuildSpec) -> list[str]:
        # --pull=false: use the base from the store when present (kiln's default),
        # pull it when missing (the cold scenario). --layers: cache every step.
        argv = self._base(r) + ["build", "--isolation", "chroot", "--layers",
                                "--pull=false", "--tls-verify=false", "-t", spec.tag]
        if spec.dockerfile:
            argv += ["-f", str(spec.dockerfile)]
        for k, v in spec.build_args.items():
            argv += ["--build-arg", f"{k}={v}"]
        if spec.target:
            argv += ["--target", spec.target]
        return argv + [str(spec.context)]

    def push(self, r: BuildahRoot, name: str, dest: str) -> list[str]:
        return self._base(r) + ["push", "--tls-verify=false", name, dest]


class Skopeo:
    binary = "skopeo"

    def copy(self, src: str, dst: str) -> list[str]:
        return [self.binary, "copy", "--quiet", "--src-tls-verify=false",
                "--dest-tls-verify=false", src, dst]


class RawCurl:
    """The registry's own limits: curl uploads/downloads of the same blobs."""

    def push(self, registry_url: str, repo: str, blobs: list[Path]) -> list[str]:
        return ["bash", str(LIB / "raw-push.sh"), registry_url, repo, *map(str, blobs)]

    def pull(self, registry_url: str, repo: str, digests: list[str]) -> list[str]:
        return ["bash", str(LIB / "raw-pull.sh"), registry_url, repo, *digests]


def and_then(*commands: list[str]) -> list[str]:
    """One timed command running several in sequence (`sh -c 'a && b'`)."""
    import shlex
    return ["sh", "-c", " && ".join(shlex.join(c) for c in commands)]


@dataclass
class Primitives:
    """builder/examples/primitives.rs: kiln's layer hashing and compression over one file."""

    binary: Path

    def available(self) -> bool:
        return self.binary.is_file() and os.access(self.binary, os.X_OK)

    def run(self, op: str, data: Path) -> list[str]:
        return [str(self.binary), op, str(data)]

    def gen(self, data: Path, mib: int) -> list[str]:
        return [str(self.binary), "gen", str(data), str(mib)]


def to_devnull(argv: list[str]) -> list[str]:
    """`argv > /dev/null` through sh. `exec` makes the tool the process that is timed and
    waited for, so the peak RSS reported is the tool's own, not a shell's."""
    return ["sh", "-c", 'exec "$@" >/dev/null', "sh", *argv]


# The primitives peers, as commands writing their whole output to stdout.
def openssl_sha256(data: Path) -> list[str]:
    return ["openssl", "dgst", "-sha256", str(data)]


def sha256sum(data: Path) -> list[str]:
    return ["sha256sum", str(data)]


def pigz(data: Path, level: int = 6) -> list[str]:
    return ["pigz", f"-{level}", "-c", str(data)]  # all cores by default


def zstd(data: Path, level: int = 3) -> list[str]:
    return ["zstd", f"-{level}", "-T0", "-c", str(data)]  # -T0: one worker per core
