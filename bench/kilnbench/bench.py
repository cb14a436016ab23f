"""Shared state of one harness run: directories, tools, registries, run counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .registry import Registry
from .runner import SetupError
from .tools import Buildah, Kiln, RawCurl, Skopeo


@dataclass
class Bench:
    workdir: Path
    runs: int
    scaling_runs: int
    kiln: Kiln
    kiln_error: str | None
    base: Registry       # long-lived: the busybox base and the images to pull
    transfer: Registry   # emptied before every push
    busybox: Path
    quick: bool = False
    buildah: Buildah = Buildah()
    skopeo: Skopeo = Skopeo()
    curl: RawCurl = RawCurl()

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def roots(self) -> Path:
        return self.workdir / "roots"

    @property
    def base_ref(self) -> str:
        return f"{self.base.host}/bench/busybox:latest"

    def build_args(self) -> dict:
        return {"BASE": self.base_ref}

    def require_kiln(self) -> None:
        if self.kiln_error:
            raise SetupError(self.kiln_error)
        if not self.kiln.available():
            raise SetupError(f"kiln binary missing at {self.kiln.binary}")
