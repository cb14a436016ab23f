"""Primitives (issue 5): SHA-256, gzip and zstd over one file through kiln's own layer code
(builder/examples/primitives.rs), against openssl, pigz and zstd in the same run.

The input is generated once by the example itself (half noise, half text, in 1 MiB runs)
and read once untimed before the comparisons, so every contender reads from the page cache.
A kiln run whose output line is wrong (bytes read, digest) is a failed run, not a fast one.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import gen, targets, tools
from .measure import Sample
from .runner import Comparison, Contender, SetupError, compare, prime, require
from .targets import Target

MIB = 1 << 20
DATA_MIB = 1024
QUICK_DATA_MIB = 256
# Part of the input's stamp: bump it whenever the generator in builder/examples/primitives.rs
# changes, so that inputs made by the old one are generated again.
GENERATOR_VERSION = 1


@dataclass
class Op:
    name: str  # the example's operation, also the table's row
    peer: str  # the contender the target compares with
    peer_argv: Callable[[Path], list[str]]
    targets: Callable[[], list[Target]]
    compresses: bool  # output is the compressed stream (discarded) rather than one line
    extras: list[tuple[str, Callable[[Path], list[str]]]] = field(default_factory=list)

    def timed(self, argv: list[str]) -> list[str]:
        return tools.to_devnull(argv) if self.compresses else argv


OPS = [
    Op("sha256", "openssl", tools.openssl_sha256, targets.sha256_throughput, False,
       [("sha256sum", tools.sha256sum)]),
    Op("gzip", "pigz", tools.pigz, targets.gzip_throughput, True),
    Op("zstd", "zstd", tools.zstd, targets.zstd_throughput, True),
]


def data_mib(quick: bool) -> int:
    return QUICK_DATA_MIB if quick else DATA_MIB


def ensure_data(workdir: Path, logs: Path, tool: tools.Primitives, mib: int,
                tool_error: str | None = None) -> Path:
    """The generated input, made by `tool` unless its stamp says it already exists (then
    the peers can run even when the example failed to build)."""
    folder = workdir / "primitives-data"
    path = folder / "input.bin"
    params = {"mib": mib, "generator": GENERATOR_VERSION}
    if gen.stamped(folder, params) and path.is_file() and path.stat().st_size == mib * MIB:
        return path
    if tool_error or not tool.available():
        raise SetupError(f"cannot generate the input: "
                         f"{tool_error or f'primitives binary missing at {tool.binary}'}")
    gen.fresh_dir(folder)
    require(prime(logs, "primitives-gen", tool.gen(path, mib)), "generating the input")
    gen.stamp(folder, params)
    return path


def read_through(path: Path) -> str:
    """Reads the file once (into the page cache) and returns its SHA-256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def parse_output(text: str, op: str) -> tuple[int, int, str] | None:
    """(bytes in, bytes out, digest or "-") from the example's `<op> IN OUT DIGEST` line."""
    for line in reversed(text.splitlines()):
        parts = line.split()
        if len(parts) == 4 and parts[0] == op and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2]), parts[3]
    return None


def check_output(text: str, op: str, size: int, digest: str) -> str | None:
    """Why the example's output is wrong, or None."""
    out = parse_output(text, op)
    if out is None:
        return f"no `{op} IN OUT DIGEST` line in the output"
    bytes_in, _, got = out
    if bytes_in != size:
        return f"read {bytes_in} bytes of {size}"
    if op == "sha256" and got != digest:
        return f"digest {got} != {digest} (hashlib)"
    return None


def reject_wrong_output(samples: list[Sample], op: str, size: int, digest: str) -> None:
    for s in samples:
        if not s.ok or not s.log:
            continue
        try:
            text = Path(s.log).read_text(errors="replace")
        except OSError as e:
            text = f"(log unreadable: {e})"
        why = check_output(text, op, size, digest)
        if why:
            s.ok, s.error = False, f"wrong output: {why}"


def compressed_size(argv: list[str]) -> int | None:
    """Bytes a compressor writes to stdout (untimed; for the size comparison only)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    total = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(MIB):
        total += len(chunk)
    return total if proc.wait() == 0 else None


def size_note(size: int, kiln_out: int | None, peer: str, peer_out: int | None) -> str:
    def pct(n: int | None) -> str:
        return "?" if n is None else f"{n / size:.1%}"

    note = f"compressed to {pct(kiln_out)} (kiln), {pct(peer_out)} ({peer})"
    if kiln_out and peer_out:
        note += f"; size kiln/{peer} {kiln_out / peer_out:.3f}"
    return note


def kiln_output_bytes(samples: list[Sample], op: str) -> int | None:
    for s in reversed(samples):
        if s.ok and s.log:
            try:
                out = parse_output(Path(s.log).read_text(errors="replace"), op)
            except OSError:
                continue
            if out:
                return out[1]
    return None


def run_primitives(*, workdir: Path, logs: Path, runs: int, quick: bool,
                   tool: tools.Primitives, tool_error: str | None) -> list[Comparison]:
    mib = data_mib(quick)
    print(f"[primitives] {mib} MiB input", flush=True)
    data: Path | None = None
    digest = ""
    data_error = None
    try:
        data = ensure_data(workdir, logs, tool, mib, tool_error)
        digest = read_through(data)
    except (SetupError, OSError) as e:
        data, data_error = None, f"no input: {e}"

    def with_data(argv: Callable[[Path], list[str]], kiln: bool = False):
        def prepare(i: int) -> list[str]:
            if data is None:
                raise SetupError(data_error or "no input")
            if kiln and (tool_error or not tool.available()):
                raise SetupError(tool_error or f"primitives binary missing at {tool.binary}")
            return argv(data)
        return prepare

    size = mib * MIB
    out = []
    for op in OPS:
        names = ["kiln", op.peer] + [name for name, _ in op.extras]
        c = Comparison("primitives", op.name, f"{mib} MiB", names, op.targets(), bytes=size)
        contenders = [Contender("kiln", with_data(lambda d, o=op.name: tool.run(o, d), True)),
                      Contender(op.peer, with_data(lambda d, o=op: o.timed(o.peer_argv(d))))]
        contenders += [Contender(name, with_data(argv)) for name, argv in op.extras]
        compare(logs, runs, c, contenders)
        reject_wrong_output(c.samples["kiln"], op.name, size, digest)
        if op.compresses and data is not None:
            c.notes.append(size_note(size, kiln_output_bytes(c.samples["kiln"], op.name),
                                     op.peer, compressed_size(op.peer_argv(data))))
        out.append(c)
    return out
