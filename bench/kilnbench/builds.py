"""Build scenarios: cold (empty stores), warm (unchanged rebuild), one-file edit."""

from __future__ import annotations

from pathlib import Path

from . import gen, targets
from .bench import Bench
from .runner import Comparison, Contender, compare, require
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


def run_workload(b: Bench, wl: BuildWorkload, section: str = "build", runs: int | None = None,
                 edit: bool = True, absolute_warm: bool = True) -> list[Comparison]:
    """cold, warm and (optionally) edit for one workload.

    The last cold run of each tool builds into the store that warm and edit then
    reuse, so no separate priming build is paid for."""
    runs = runs or b.runs
    print(f"[{section}] {wl.name}: generating workload", flush=True)
    spec = spec_for(b, wl)
    gen.read_tree(spec.context)
    last = runs - 1
    kwarm = b.roots / f"kiln-warm-{wl.name}"
    bwarm = Buildah.new_root(b.roots, f"buildah-warm-{wl.name}")

    def kroot(i: int) -> Path:
        return kwarm if i == last else b.roots / f"kiln-cold-{wl.name}-{i}"

    def broot(i: int):
        return bwarm if i == last else Buildah.new_root(b.roots, f"buildah-cold-{wl.name}-{i}")

    def kiln_cold(i: int) -> list[str]:
        b.require_kiln()
        remove_tree(kroot(i))
        return b.kiln.build(kroot(i), spec)

    def buildah_cold(i: int) -> list[str]:
        broot(i).remove()
        return b.buildah.build(broot(i), spec)

    def kiln_cold_done(i: int) -> None:
        if i != last:
            remove_tree(kroot(i))

    def buildah_cold_done(i: int) -> None:
        if i != last:
            broot(i).remove()

    edit_path = wl.edit_file(b.workdir)
    original = edit_path.read_bytes()
    out = []
    try:
        cold = Comparison(section, wl.name, "cold", ["kiln", "buildah"], targets.cold_build())
        out.append(compare(b.logs, runs, cold, [
            Contender("kiln", kiln_cold, kiln_cold_done),
            Contender("buildah", buildah_cold, buildah_cold_done),
        ]))
        kprime, bprime = cold.samples["kiln"][-1], cold.samples["buildah"][-1]

        def kiln_prepare(i: int) -> list[str]:
            b.require_kiln()
            require(kprime, "kiln's last cold build (the warm store)")
            return b.kiln.build(kwarm, spec)

        def buildah_prepare(i: int) -> list[str]:
            require(bprime, "buildah's last cold build (the warm store)")
            return b.buildah.build(bwarm, spec)

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
        remove_tree(kwarm)
        bwarm.remove()
    return out
