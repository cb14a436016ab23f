"""Targets from the issues, evaluated on the summaries of one comparison.

Each target names the contenders it reads; when one of them has no data (a
failed or missing command) the target is "no data", never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .measure import Summary

Summaries = dict[str, Summary]


@dataclass
class Target:
    label: str
    compute: Callable[[Summaries], float | None]
    op: str  # "<=", ">=" or "<"
    limit: float

    def evaluate(self, s: Summaries) -> dict:
        value = self.compute(s)
        meets = None
        if value is not None:
            meets = {"<=": value <= self.limit, ">=": value >= self.limit,
                     "<": value < self.limit}[self.op]
        return {"label": self.label, "value": value, "op": self.op,
                "limit": self.limit, "meets": meets}


def _median(s: Summaries, name: str) -> float | None:
    x = s.get(name)
    if x is None or not x.ok or not x.median_s:
        return None
    return x.median_s


def ratio(s: Summaries, a: str, b: str) -> float | None:
    """Median time of a over median time of b (below 1: a is faster)."""
    ma, mb = _median(s, a), _median(s, b)
    return ma / mb if ma is not None and mb is not None else None


def time_ratio(a: str, b: str, limit: float) -> Target:
    return Target(f"{a}/{b} time", lambda s: ratio(s, a, b), "<=", limit)


def throughput_ratio(a: str, b: str, limit: float) -> Target:
    """a's throughput relative to b's, for the same bytes: b's time over a's."""
    def compute(s: Summaries) -> float | None:
        r = ratio(s, b, a)
        return r
    return Target(f"{a} throughput / {b}", compute, ">=", limit)


def seconds(a: str, limit: float) -> Target:
    return Target(f"{a} seconds", lambda s: _median(s, a), "<", limit)


def peak_rss_mib(a: str, limit: float) -> Target:
    def compute(s: Summaries) -> float | None:
        x = s.get(a)
        if x is None or not x.ok or x.peak_rss_kb is None:
            return None
        return x.peak_rss_kb / 1024
    return Target(f"{a} peak RSS MiB", compute, "<", limit)


# The targets of issues 3, 4 and 5, by scenario.
def cold_build(peer: str = "buildah") -> list[Target]:
    return [time_ratio("kiln", peer, 0.5), peak_rss_mib("kiln", 100)]


def warm_build(peer: str = "buildah", absolute: bool = True) -> list[Target]:
    out = [time_ratio("kiln", peer, 0.1)]
    if absolute:
        out.append(seconds("kiln", 0.2))
    return out + [peak_rss_mib("kiln", 100)]


def edit_build(peer: str = "buildah") -> list[Target]:
    return [time_ratio("kiln", peer, 0.5), peak_rss_mib("kiln", 100)]


def pull() -> list[Target]:
    return [throughput_ratio("kiln", "skopeo", 1.5), peak_rss_mib("kiln", 64)]


def push() -> list[Target]:
    return [throughput_ratio("kiln", "curl", 0.95), peak_rss_mib("kiln", 64)]


def build_push() -> list[Target]:
    return [time_ratio("kiln", "buildah", 0.5), peak_rss_mib("kiln", 100)]


# Issue 5's primitives: the same bytes through kiln's code and through the reference tool.
def sha256_throughput() -> list[Target]:
    return [throughput_ratio("kiln", "openssl", 0.9)]


def gzip_throughput() -> list[Target]:
    return [throughput_ratio("kiln", "pigz", 1.0)]


def zstd_throughput() -> list[Target]:
    return [throughput_ratio("kiln", "zstd", 0.9)]
