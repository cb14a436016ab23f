"""The benchmark workloads, generated deterministically into a work dir.

Each build workload is a context directory with a Dockerfile whose base is
`ARG BASE` (the busybox image on the loopback registry, passed as a build arg).
Generation is skipped when the directory's stamp matches its parameters.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import gen, oci

GEN_VERSION = 1
MIB = 1 << 20

META = """LABEL org.opencontainers.image.title="kiln-bench-{name}" \\
      org.opencontainers.image.source="https://example.invalid/kiln-bench"
ENV APP_HOME=/app LANG=C.UTF-8 BENCH_WORKLOAD={name}
WORKDIR /app
EXPOSE 8080/tcp
STOPSIGNAL SIGTERM
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["ls -la /app"]
"""


@dataclass
class BuildWorkload:
    name: str
    params: dict
    generate: Callable[[Path, dict], None]
    edit_path: Callable[[dict], str]
    target: str | None = None
    description: str = ""

    def context(self, workdir: Path) -> Path:
        return workdir / "ctx" / self.name

    def ensure(self, workdir: Path) -> Path:
        ctx = self.context(workdir)
        params = {"version": GEN_VERSION, "workload": self.name, **self.params}
        if not gen.stamped(ctx, params):
            gen.fresh_dir(ctx)
            self.generate(ctx, self.params)
            gen.stamp(ctx, params)
        return ctx

    def edit_file(self, workdir: Path) -> Path:
        return self.context(workdir) / self.edit_path(self.params)


def _middle_file(prefix: str, files: int, per_dir: int) -> str:
    i = files // 2
    return f"{prefix}/d{i // per_dir:04d}/f{i:06d}.txt"


# --- app ---------------------------------------------------------------------

def gen_app(ctx: Path, p: dict) -> None:
    gen.write_text_tree(ctx / "src", "app/src", p["files"], p["per_dir"], 100, 2000)
    r = gen.rng("app/logs")
    for d in sorted((ctx / "src").iterdir()):
        (d / "debug.log").write_bytes(gen.text(r, 64 * 1024))
    (ctx / "app.log").write_bytes(gen.text(r, 256 * 1024))
    gen.write_random_file(ctx / "assets" / "blob.bin", p["asset_mb"] * MIB, "app/asset")
    per = 10
    for i in range(per):
        gen.write_filler_file(ctx / "big-excluded" / f"chunk-{i:02d}.bin",
                              p["excluded_mb"] * MIB // per, f"app/excluded/{i}")
    (ctx / ".dockerignore").write_text("big-excluded\n**/*.log\n*.log\n")
    (ctx / "Dockerfile").write_text(f"""# kiln-bench app: sources, a large asset, RUN steps, metadata
ARG BASE
FROM ${{BASE}}
COPY assets/blob.bin /app/assets/blob.bin
RUN mkdir -p /app/gen && dd if=/app/assets/blob.bin of=/app/gen/run.bin bs=1048576 count={p["run_mb"]}
COPY src/ /app/src/
RUN for i in $(seq 1 200); do echo "generated $i" > /app/gen/small-$i.txt; done && ls -R /app/src | wc -l > /app/gen/count.txt
{META.format(name="app")}""")


APP = BuildWorkload(
    name="app",
    params={"files": 10000, "per_dir": 100, "asset_mb": 200, "excluded_mb": 500, "run_mb": 50},
    generate=gen_app,
    edit_path=lambda p: _middle_file("src", p["files"], p["per_dir"]),
    description="10,000 small files in 100 dirs, a 200 MiB incompressible asset, "
                "500 MiB dir and *.log excluded by .dockerignore, RUN writing 50 MiB",
)


# --- multistage ----------------------------------------------------------------

def gen_multistage(ctx: Path, p: dict) -> None:
    gen.write_text_tree(ctx / "deps", "ms/deps", p["deps"], 100, 200, 4000)
    gen.write_text_tree(ctx / "tools", "ms/tools", p["tools"], 50, 200, 4000)
    gen.write_text_tree(ctx / "src", "ms/src", p["src"], 100, 100, 2000)
    (ctx / "Dockerfile").write_text(f"""# kiln-bench multistage: 4 stages, one unused by the target
ARG BASE
FROM ${{BASE}} AS deps
COPY deps/ /deps/
RUN mkdir -p /out && for d in /deps/*; do cat "$d"/* > "/out/$(basename "$d").txt"; done

FROM ${{BASE}} AS tools
COPY tools/ /tools/
RUN mkdir -p /out && tar -cf /out/tools.tar -C /tools . && sha256sum /out/tools.tar > /out/tools.sum

FROM ${{BASE}} AS unused
RUN dd if=/dev/zero of=/unused.bin bs=1048576 count={p["unused_mb"]} && sleep 2

FROM ${{BASE}} AS final
COPY --from=deps /out/ /app/deps/
COPY --from=tools /out/ /app/tools/
COPY src/ /app/src/
{META.format(name="multistage")}""")


MULTISTAGE = BuildWorkload(
    name="multistage",
    params={"deps": 2000, "tools": 500, "src": 2000, "unused_mb": 64},
    generate=gen_multistage,
    edit_path=lambda p: _middle_file("src", p["src"], 100),
    target="final",
    description="4 stages (deps, tools, unused, final), COPY --from of each used stage",
)


# --- many-layers ---------------------------------------------------------------

def gen_many_layers(ctx: Path, p: dict) -> None:
    lines = ["# kiln-bench many-layers: alternating COPY and RUN", "ARG BASE", "FROM ${BASE}"]
    for step in range(p["steps"]):
        if step % 2 == 0:
            gen.write_text_tree(ctx / "layers" / f"s{step:02d}", f"ml/{step}",
                                p["files_per_copy"], p["files_per_copy"], 200, 4000)
            lines.append(f"COPY layers/s{step:02d}/ /data/s{step:02d}/")
        else:
            lines.append(f"RUN echo step {step} > /data/run-{step:02d}.txt && "
                         f"ls /data > /data/list-{step:02d}.txt")
    lines.append(META.format(name="many-layers"))
    (ctx / "Dockerfile").write_text("\n".join(lines))


MANY_LAYERS = BuildWorkload(
    name="many-layers",
    params={"steps": 30, "files_per_copy": 20},
    generate=gen_many_layers,
    # The edit lands in the middle: the COPY at step 14 and the 15 steps after it rerun.
    edit_path=lambda p: _middle_file(f"layers/s{(p['steps'] // 2 - 1) // 2 * 2:02d}",
                                     p["files_per_copy"], p["files_per_copy"]),
    description="30 alternating small RUN and COPY steps",
)

BUILD_WORKLOADS = [APP, MULTISTAGE, MANY_LAYERS]


# --- scaling contexts ----------------------------------------------------------

def gen_files(ctx: Path, p: dict) -> None:
    gen.write_text_tree(ctx / "files", f"files/{p['files']}", p["files"], 100, 64, 1024)
    (ctx / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY files/ /files/\n")


def files_workload(n: int) -> BuildWorkload:
    return BuildWorkload(
        name=f"files-{n}",
        params={"files": n},
        generate=gen_files,
        edit_path=lambda p: _middle_file("files", p["files"], 100),
        description=f"a context of {n:,} small files, one COPY",
    )


# --- images written directly as OCI layouts ------------------------------------

@dataclass
class SyntheticImage:
    """Busybox base plus `layers` incompressible layers totalling `total_mb` MiB."""
    name: str
    total_mb: int
    layers: int = 4

    def ensure(self, workdir: Path, busybox: Path) -> Path:
        layout = workdir / "images" / self.name
        params = {"version": GEN_VERSION, "total_mb": self.total_mb, "layers": self.layers,
                  "busybox_size": busybox.stat().st_size}
        if not gen.stamped(layout, params):
            gen.fresh_dir(layout)
            fills = [oci.busybox_layer(busybox)]
            each = self.total_mb * MIB // max(1, self.layers)
            for i in range(self.layers):
                fills.append(_random_layer(f"data/part-{i}.bin", each, f"{self.name}/{i}"))
            oci.write_layout(layout, "latest", fills)
            gen.stamp(layout, params)
        return layout


def _random_layer(name: str, size: int, seed: str) -> Callable[[tarfile.TarFile], None]:
    def fill(tar: tarfile.TarFile) -> None:
        oci.add_dir(tar, "data")
        oci.add_random(tar, name, size, seed)
    return fill


BASE_IMAGE = SyntheticImage("busybox", total_mb=0, layers=0)
