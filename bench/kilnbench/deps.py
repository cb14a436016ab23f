"""Peers from Debian packages, the kiln release binary, and machine facts."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import struct
import subprocess
import time
from pathlib import Path

# (what must exist, Debian package providing it)
PEERS = [
    ("buildah", "buildah"),
    ("skopeo", "skopeo"),
    ("docker-registry", "docker-registry"),
    ("curl", "curl"),
    ("/usr/bin/time", "time"),
    # the primitives section's peers
    ("openssl", "openssl"),
    ("pigz", "pigz"),
    ("zstd", "zstd"),
]
BUSYBOX = Path("/bin/busybox")


class DepsError(Exception):
    pass


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP (dynamic loader) header."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
                return False
            endian = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        p_type, = struct.unpack_from(endian + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def _present(what: str) -> bool:
    return Path(what).exists() if what.startswith("/") else shutil.which(what) is not None


def missing_packages() -> list[str]:
    pkgs = [pkg for what, pkg in PEERS if not _present(what)]
    if not is_static_elf(BUSYBOX):
        pkgs.append("busybox-static")
    return pkgs


def ensure_peers() -> None:
    pkgs = missing_packages()
    if not pkgs:
        return
    print(f"installing peers from Debian: {' '.join(pkgs)}", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (sudo + ["apt-get", "update"],
                 sudo + ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]):
        if subprocess.run(argv, env=env).returncode != 0:
            raise DepsError(f"`{' '.join(argv)}` failed; install {' '.join(pkgs)} by hand")
    still = missing_packages()
    if still:
        raise DepsError(f"still missing after apt-get: {' '.join(still)}")


def target_dir(repo: Path) -> Path:
    """Cargo's target directory: `CARGO_TARGET_DIR` (relative to the repo) or `repo/target`."""
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else repo / "target"
    return base if base.is_absolute() else repo / base


def kiln_binary(repo: Path) -> Path:
    return target_dir(repo) / "release" / "kiln"


def example_binary(repo: Path, name: str) -> Path:
    return target_dir(repo) / "release" / "examples" / name


def cargo_build(repo: Path, args: list[str], log: Path) -> str | None:
    """`cargo build --release ARGS`; None on success, else why it failed."""
    what = " ".join(["cargo", "build", "--release", *args])
    print(f"building ({what})", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        with open(log, "wb") as out:
            code = subprocess.run(["cargo", "build", "--release", *args], cwd=repo,
                                  stdout=out, stderr=subprocess.STDOUT).returncode
    except OSError as e:
        return f"cannot run cargo: {e}"
    if code != 0:
        return f"{what} failed (exit {code}); see {log}"
    print(f"  built in {time.monotonic() - start:.0f} s", flush=True)
    return None


def build_kiln(repo: Path, log: Path) -> str | None:
    return cargo_build(repo, ["-p", "kiln"], log)


def build_example(repo: Path, package: str, name: str, log: Path) -> str | None:
    return cargo_build(repo, ["-p", package, "--example", name], log)


def _first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        text = (r.stdout or r.stderr).strip()
        return text.splitlines()[0] if text else f"(exit {r.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(unavailable: {e})"


def sha256_speed(mib: int = 256) -> float:
    block = b"\x5a" * (1 << 20)
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(mib):
        h.update(block)
    return mib / (time.perf_counter() - start)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib,
            "kernel": platform.release(), "sha256_mib_s": round(sha256_speed(), 1)}


def versions(kiln: Path) -> dict:
    return {
        "buildah": _first_line(["buildah", "--version"]),
        "skopeo": _first_line(["skopeo", "--version"]),
        "docker-registry": _first_line(["docker-registry", "--version"]),
        "curl": _first_line(["curl", "--version"]),
        "busybox": _first_line([str(BUSYBOX)]),
        "openssl": _first_line(["openssl", "version"]),
        "pigz": _first_line(["pigz", "--version"]),
        "zstd": _first_line(["zstd", "--version"]),
        "kiln": _first_line([str(kiln), "--version"]) if kiln.is_file() else "(not built)",
    }


def revision(repo: Path) -> str:
    rev = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return rev + ("-dirty" if dirty else "")
