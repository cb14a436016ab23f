"""`bench/run`: flags, setup (peers, kiln, registries, base image), sections, report."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import deps, plot, report
from .bench import Bench
from .builds import run_workload
from .primitives import run_primitives
from .registry import Registry, RegistryError
from .runner import Comparison
from .scaling import run_scaling
from .tools import Kiln, Primitives, defer_removals, remove_tree, spread_stores
from .transfer import publish, run_transfer
from .workloads import BASE_IMAGE, BUILD_WORKLOADS

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
SECTIONS = [w.name for w in BUILD_WORKLOADS] + ["transfer", "scaling", "primitives"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark kiln against buildah, skopeo, raw curl, and openssl, pigz and "
                    "zstd for its primitives (see bench/README.md).")
    p.add_argument("--runs", type=int, help="timed runs per contender (default 5, --quick 1)")
    p.add_argument("--quick", action="store_true",
                   help="1 run, scaling without the 100k-file context and the 1 GiB image, "
                        "primitives over 256 MiB instead of 1 GiB")
    p.add_argument("--scaling-runs", type=int, default=1,
                   help="runs per scaling point (default 1: buildah needs minutes at 100k files)")
    p.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                   help=f"run only these (comma-separated, repeatable): {', '.join(SECTIONS)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/kiln-bench"),
                   help="generated workloads, stores and logs (default /tmp/kiln-bench)")
    p.add_argument("--kiln", type=Path,
                   help="use this kiln binary instead of building target/release/kiln")
    args = p.parse_args(argv)
    only = [x.strip() for item in args.only for x in item.split(",") if x.strip()]
    unknown = [x for x in only if x not in SECTIONS]
    if unknown:
        p.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.only = only or SECTIONS
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1 or args.scaling_runs < 1:
        p.error("--runs and --scaling-runs must be at least 1")
    args.workdir = args.workdir.resolve()
    if args.workdir == REPO or REPO in args.workdir.parents:
        p.error(f"--workdir {args.workdir} is inside the repository; choose a path outside it")
    return args


def write_outputs(rows: list[Comparison], meta: dict) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    md = report.markdown(rows, meta)
    (OUT / "results.json").write_text(json.dumps(report.document(rows, meta), indent=2) + "\n")
    (OUT / "results.md").write_text(md + "\n")
    return md


def run_registry_sections(args: argparse.Namespace, kiln: Kiln, kiln_error: str | None,
                          rows: list[Comparison], meta: dict) -> None:
    """Builds, transfers and scaling: everything that needs the loopback registries. Appends
    to `rows` as it goes, so an interrupt keeps what was measured."""
    workdir = args.workdir
    base = Registry("base", workdir)
    transfer = Registry("transfer", workdir)
    try:
        base.start()
        transfer.start()
        busybox = deps.BUSYBOX.resolve()
        print(f"registries: base {base.host}, transfer {transfer.host}", flush=True)
        b = Bench(workdir=workdir, runs=args.runs,
                  scaling_runs=args.scaling_runs,
                  kiln=kiln, kiln_error=kiln_error, base=base, transfer=transfer,
                  busybox=busybox, quick=args.quick)
        publish(b, BASE_IMAGE.ensure(workdir, busybox), "busybox")
        meta["config"]["scaling_runs"] = b.scaling_runs
        for wl in BUILD_WORKLOADS:
            if wl.name in args.only:
                rows += run_workload(b, wl)
                write_outputs(rows, meta)
        if "transfer" in args.only:
            rows += run_transfer(b)
            write_outputs(rows, meta)
        if "scaling" in args.only:
            rows += run_scaling(b)
    finally:
        base.stop()
        transfer.stop()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        deps.ensure_peers()
    except deps.DepsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("note: not root; buildah needs root (or a configured rootless setup) here",
              file=sys.stderr)

    workdir = args.workdir
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    for old in (workdir / "logs").iterdir():
        old.unlink()
    remove_tree(workdir / "roots")
    (workdir / "roots").mkdir(parents=True)
    defer_removals(workdir / "roots")
    spread_stores(workdir / "roots")

    if args.kiln:
        kiln = Kiln(args.kiln.resolve())
        kiln_error = None if kiln.available() else f"--kiln {args.kiln}: not an executable file"
    else:
        kiln = Kiln(deps.kiln_binary(REPO))
        kiln_error = deps.build_kiln(REPO, workdir / "logs" / "cargo-build.log")
    if kiln_error:
        print(f"warning: {kiln_error}; kiln results will be recorded as failures",
              file=sys.stderr)
    prim = Primitives(deps.example_binary(REPO, "primitives"))
    prim_error = None
    if "primitives" in args.only:
        prim_error = deps.build_example(REPO, "kiln-builder", "primitives",
                                        workdir / "logs" / "cargo-build-primitives.log")
        if prim_error:
            print(f"warning: {prim_error}; kiln primitives will be recorded as failures",
                  file=sys.stderr)

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["bench/run", *argv]),
        "machine": deps.machine(),
        "versions": deps.versions(kiln.binary),
        "kiln": {"binary": str(kiln.binary), "revision": deps.revision(REPO),
                 "error": kiln_error},
        "config": {"runs": args.runs, "quick": args.quick, "only": args.only,
                   "workdir": str(workdir)},
    }
    if "primitives" in args.only:
        meta["primitives"] = {"binary": str(prim.binary), "error": prim_error}

    rows: list[Comparison] = []
    try:
        # First and without registries: nothing else runs while the CPU-bound figures are taken.
        if "primitives" in args.only:
            rows += run_primitives(workdir=workdir, logs=workdir / "logs", runs=args.runs,
                                   quick=args.quick, tool=prim, tool_error=prim_error)
            write_outputs(rows, meta)
        if any(s != "primitives" for s in args.only):
            run_registry_sections(args, kiln, kiln_error, rows, meta)
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; writing what was measured", file=sys.stderr)
    finally:
        remove_tree(workdir / "roots")
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    md = write_outputs(rows, meta)
    if plot.scaling_png(rows, OUT / "scaling.png"):
        print(f"plot: {OUT / 'scaling.png'}")
    print()
    print(md)
    print(f"results: {OUT / 'results.json'}, {OUT / 'results.md'}; "
          f"logs: {workdir / 'logs'}; {meta['elapsed_s']:.0f} s")
    return 0
