"""Transfer scenarios: pull and push against loopback registries, the raw curl
ceiling of the same blobs, and build-then-push of a fresh image."""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import gen, oci, targets
from .bench import Bench
from .builds import spec_for
from .measure import Sample, failed
from .registry import manifest_blobs
from .runner import Comparison, Contender, SetupError, compare, prime, require
from .tools import Buildah, and_then, remove_tree
from .workloads import APP


def layout_bytes(layout: Path) -> int:
    return sum(p.stat().st_size for p in oci.layout_blobs(layout))


def publish(b: Bench, layout: Path, name: str) -> str:
    """Copy an OCI layout into the base registry (untimed); return its reference."""
    ref = f"{b.base.host}/bench/{name}:latest"
    subprocess.run(b.skopeo.copy(f"oci:{layout}:latest", f"docker://{ref}"),
                   check=True, stdout=subprocess.DEVNULL)
    return ref


def app_layout(b: Bench) -> Path:
    """The app image as buildah builds it, exported once as an OCI layout (cached)."""
    layout = b.workdir / "images" / "app"
    version = subprocess.run(["buildah", "--version"], capture_output=True, text=True).stdout
    params = {"app": APP.params, "buildah": version.strip(), "version": 1}
    if gen.stamped(layout, params):
        return layout
    print("[transfer] building the app image with buildah (untimed reference)", flush=True)
    gen.fresh_dir(layout)
    layout.rmdir()
    root = Buildah.new_root(b.roots, "buildah-appref")
    try:
        root.remove()
        spec = spec_for(b, APP)
        for argv in (b.buildah.build(root, spec),
                     b.buildah.push(root, spec.tag, f"oci:{layout}:latest")):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    finally:
        root.remove()
    gen.stamp(layout, params)
    return layout


def pull_push(b: Bench, section: str, name: str, layout: Path, runs: int) -> list[Comparison]:
    src = publish(b, layout, name)
    # What the pulls read (the registry's blobs) and the pushes send, cached for every tool.
    gen.read_tree(b.base.dir)
    gen.read_tree(layout)
    served = manifest_blobs(b.base.url, f"bench/{name}", "latest")
    blobs = oci.layout_blobs(layout)
    out = []

    # pull: an empty store / empty directory each run
    def kroot(i: int) -> Path:
        return b.roots / f"kiln-pull-{name}-{i}"

    def sdir(i: int) -> Path:
        return b.roots / f"skopeo-pull-{name}-{i}"

    def kiln_pull(i: int) -> list[str]:
        b.require_kiln()
        remove_tree(kroot(i))
        return b.kiln.pull(kroot(i), src)

    def skopeo_pull(i: int) -> list[str]:
        remove_tree(sdir(i))
        return b.skopeo.copy(f"docker://{src}", f"oci:{sdir(i)}:latest")

    pull = Comparison(section, name, "pull", ["kiln", "skopeo", "curl"], targets.pull(),
                      bytes=sum(size for _, size in served))
    pull.notes.append("skopeo copy docker:// -> oci: dir; curl: concurrent GET | sha256sum")
    out.append(compare(b.logs, runs, pull, [
        Contender("kiln", kiln_pull, lambda i: remove_tree(kroot(i))),
        Contender("skopeo", skopeo_pull, lambda i: remove_tree(sdir(i))),
        Contender("curl", lambda i: b.curl.pull(b.base.url, f"bench/{name}",
                                                [d for d, _ in served])),
    ]))

    # push: into an empty registry each run; kiln pushes from a store primed by a pull
    dest_repo = f"bench/{name}"

    def dest() -> str:  # the transfer registry moves to a new port on every reset
        return f"{b.transfer.host}/{dest_repo}:latest"

    store = b.roots / f"kiln-push-{name}"
    try:
        remove_tree(store)
        try:
            b.require_kiln()
            kprime: Sample = prime(b.logs, f"kiln-pull-for-push-{name}", b.kiln.pull(store, src))
        except SetupError as e:
            kprime = failed("(setup)", str(e))

        def kiln_push(i: int) -> list[str]:
            b.require_kiln()
            require(kprime, "kiln pull into the push store")
            b.transfer.reset()
            return b.kiln.push(store, src, dest())

        def skopeo_push(i: int) -> list[str]:
            b.transfer.reset()
            return b.skopeo.copy(f"oci:{layout}:latest", f"docker://{dest()}")

        def curl_push(i: int) -> list[str]:
            b.transfer.reset()
            return b.curl.push(b.transfer.url, dest_repo, blobs)

        push = Comparison(section, name, "push", ["kiln", "skopeo", "curl"], targets.push(),
                          bytes=layout_bytes(layout))
        push.notes.append("empty registry each run; skopeo copy oci: -> docker://; "
                          "curl: concurrent POST + streamed PATCH + PUT per blob")
        out.append(compare(b.logs, runs, push, [
            Contender("kiln", kiln_push),
            Contender("skopeo", skopeo_push),
            Contender("curl", curl_push),
        ]))
    finally:
        remove_tree(store)
    return out


def build_push(b: Bench, runs: int) -> Comparison:
    """`build` + `push` of a fresh app image: empty stores, empty registry."""
    spec = spec_for(b, APP)
    gen.read_tree(spec.context)

    def dest() -> str:
        return f"{b.transfer.host}/bench/app-built:latest"

    def kroot(i: int) -> Path:
        return b.roots / f"kiln-buildpush-{i}"

    def broot(i: int):
        return Buildah.new_root(b.roots, f"buildah-buildpush-{i}")

    def kiln_prepare(i: int) -> list[str]:
        b.require_kiln()
        remove_tree(kroot(i))
        b.transfer.reset()
        return b.kiln.build_push(kroot(i), spec, dest())

    def buildah_prepare(i: int) -> list[str]:
        broot(i).remove()
        b.transfer.reset()
        return and_then(b.buildah.build(broot(i), spec),
                        b.buildah.push(broot(i), spec.tag, f"docker://{dest()}"))

    c = Comparison("transfer", "app", "build+push", ["kiln", "buildah"], targets.build_push())
    c.notes.append("cold store, base pulled from the loopback registry, gzip push to an empty "
                   "one; kiln: `build --push`, buildah: `build` then `push`")
    return compare(b.logs, runs, c, [
        Contender("kiln", kiln_prepare, lambda i: remove_tree(kroot(i))),
        Contender("buildah", buildah_prepare, lambda i: broot(i).remove()),
    ])


def run_transfer(b: Bench) -> list[Comparison]:
    layout = app_layout(b)
    out = pull_push(b, "transfer", "app", layout, b.runs)
    out.append(build_push(b, b.runs))
    return out
