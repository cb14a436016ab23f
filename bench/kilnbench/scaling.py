"""Scaling figures (issue 5 part 2): how build and transfer cost grows with size.

Build and unchanged-rebuild time for contexts of 1k, 10k and 100k files, and
pull/push time for 100 MiB and 1 GiB images. The growth exponent between two
sizes is log(t2/t1) / log(n2/n1): 1 is linear, above ~1.15 is flagged as
super-linear.
"""

from __future__ import annotations

import math

from .bench import Bench
from .builds import run_workload
from .runner import Comparison
from .transfer import pull_push
from .workloads import SyntheticImage, files_workload

FILE_COUNTS = [1_000, 10_000, 100_000]
IMAGE_SIZES_MB = [100, 1024]
QUICK_FILE_COUNTS = [1_000, 10_000]
QUICK_IMAGE_SIZES_MB = [100]
SUPERLINEAR = 1.15


def image_name(mb: int) -> str:
    return f"img-{mb}m"


def run_scaling(b: Bench) -> list[Comparison]:
    out = []
    counts = QUICK_FILE_COUNTS if b.quick else FILE_COUNTS
    sizes = QUICK_IMAGE_SIZES_MB if b.quick else IMAGE_SIZES_MB
    for n in counts:
        out += run_workload(b, files_workload(n), section="scaling", runs=b.scaling_runs,
                            edit=False, absolute_warm=False)
    for mb in sizes:
        print(f"[scaling] {image_name(mb)}: generating image", flush=True)
        layout = SyntheticImage(image_name(mb), total_mb=mb).ensure(b.workdir, b.busybox)
        # Transfers take seconds, unlike a 100k-file buildah build: 3 runs even in the
        # default run, so one noisy sample of a sub-second pull does not decide a target.
        out += pull_push(b, "scaling", image_name(mb), layout, transfer_runs(b))
    return out


def transfer_runs(b: Bench) -> int:
    return max(b.scaling_runs, 1 if b.quick else 3)


def exponent(n1: float, t1: float | None, n2: float, t2: float | None) -> float | None:
    if not t1 or not t2 or n1 <= 0 or n2 <= n1:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)
