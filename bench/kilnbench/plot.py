"""Optional PNG of the scaling figures, only when matplotlib is importable."""

from __future__ import annotations

from pathlib import Path

from .runner import Comparison


def scaling_png(rows: list[Comparison], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    builds = [c for c in rows if c.section == "scaling" and c.subject.startswith("files-")]
    images = [c for c in rows if c.section == "scaling" and c.subject.startswith("img-")]
    if not builds and not images:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for tool in ("kiln", "buildah"):
        for scenario in ("cold", "warm"):
            pts = sorted((int(c.subject.split("-")[1]), c.summaries()[tool].median_s)
                         for c in builds if c.scenario == scenario and c.summaries()[tool].ok)
            if pts:
                left.plot(*zip(*pts), marker="o", label=f"{tool} {scenario}")
    left.set(xscale="log", yscale="log", xlabel="files in context", ylabel="seconds",
             title="build time")
    left.legend()
    for tool in ("kiln", "skopeo", "curl"):
        for op in ("pull", "push"):
            pts = sorted(((c.bytes or 0) / (1 << 20), c.summaries()[tool].median_s)
                         for c in images if c.scenario == op and c.summaries()[tool].ok)
            if pts:
                right.plot(*zip(*pts), marker="o", label=f"{tool} {op}")
    right.set(xscale="log", yscale="log", xlabel="image MiB", ylabel="seconds",
              title="transfer time")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True
