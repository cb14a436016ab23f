"""Build scenarios: cold (empty stores), warm (unchanged rebuild), one-file edit."""

from __future__ import annotations

from pathlib import Path

from . import targets
from .bench import Bench
from .measure import Sample, failed
from .runner import Comparison, Contender, SetupError, compare, prime, require
from .tools import Buildah, BuildSpec, remove_tree
from .workloads import BuildWorkload


def edited(original: bytes, n: int) -> bytes:
    """Variant n of a file: new bytes, same size (a size check cannot see the edit)."""
    mark = f"edit {n:08d}\n".encode()
    if len(original) < len(mark):
        return mark
    return mark + original[len(mark):]


def spec_for(b: Bench, wl: BuildWorkload) -> BuildSpec:
    return BuildSpec(wl.ensure(b.workdir), f"bench-{wl.name}", b.build_args(), wl.target)


def cold_contenders(b: Bench, spec: BuildSpec, label: str) -> list[Contender]:
    def kroot(i: int) -> Path:
        return b.roots / f"kiln-{label}-{i}"

    def broot(i: int):
        return Buildah.new_root(b.roots, f"buildah-{label}-{i}")

    def kiln_prepare(i: int) -> list[str]:
        b.require_kiln()
        remove_tree(kroot(i))
        return b.kiln.build(kroot(i), spec)

    def buildah_prepare(i: int) -> list[str]:
        broot(i).remove()
        return b.buildah.build(broot(i), spec)

    return [
        Contender("kiln", kiln_prepare, lambda i: remove_tree(kroot(i))),
        Contender("buildah", buildah_prepare, lambda i: broot(i).remove()),
    ]


def run_workload(b: Bench, wl: BuildWorkload, section: str = "build", runs: int | None = None,
                 edit: bool = True, absolute_warm: bool = True) -> list[Comparison]:
    runs = runs or b.runs
    print(f"[{section}] {wl.name}: generating workload", flush=True)
    spec = spec_for(b, wl)
    out = []

    cold = Comparison(section, wl.name, "cold", ["kiln", "buildah"], targets.cold_build())
    out.append(compare(b.logs, runs, cold, cold_contenders(b, spec, f"cold-{wl.name}")))

    kroot = b.roots / f"kiln-warm-{wl.name}"
    broot = Buildah.new_root(b.roots, f"buildah-warm-{wl.name}")
    edit_path = wl.edit_file(b.workdir)
    original = edit_path.read_bytes()
    try:
        remove_tree(kroot)
        broot.remove()
        try:
            b.require_kiln()
            kprime: Sample = prime(b.logs, f"kiln-warm-{wl.name}", b.kiln.build(kroot, spec))
        except SetupError as e:
            kprime = failed("(setup)", str(e))
        bprime = prime(b.logs, f"buildah-warm-{wl.name}", b.buildah.build(broot, spec))

        def kiln_prepare(i: int) -> list[str]:
            b.require_kiln()
            require(kprime, "kiln priming build")
            return b.kiln.build(kroot, spec)

        def buildah_prepare(i: int) -> list[str]:
            require(bprime, "buildah priming build")
            return b.buildah.build(broot, spec)

        contenders = [Contender("kiln", kiln_prepare), Contender("buildah", buildah_prepare)]
        warm = Comparison(section, wl.name, "warm", ["kiln", "buildah"],
                          targets.warm_build(absolute=absolute_warm))
        out.append(compare(b.logs, runs, warm, contenders))

        if edit:
            def touch(i: int) -> None:
                edit_path.write_bytes(edited(original, i + 1))

            one = Comparison(section, wl.name, "edit", ["kiln", "buildah"], targets.edit_build())
            one.notes.append(f"each round rewrites {edit_path.relative_to(spec.context)} "
                             "(same size, new bytes)")
            out.append(compare(b.logs, runs, one, contenders, before_round=touch))
    finally:
        edit_path.write_bytes(original)
        remove_tree(kroot)
        broot.remove()
    return out
