"""Markdown tables and the JSON document for a set of comparisons."""

from __future__ import annotations

from .runner import Comparison
from .measure import Summary
from . import scaling

MIB = 1 << 20


def fmt_time(s: Summary, size: int | None = None) -> str:
    if s.runs == 0:
        return "–"
    if not s.ok:
        if s.ok_runs:
            return f"FAIL {s.runs - s.ok_runs}/{s.runs}"
        return "FAIL"
    cell = f"{s.median_s:.2f} s"
    if size:
        cell += f", {size / MIB / s.median_s:.0f} MiB/s"
    if s.runs > 1:
        cell += f" ({s.min_s:.2f}–{s.max_s:.2f})"
    return cell


def fmt_rss(s: Summary) -> str:
    if not s.ok or s.peak_rss_kb is None:
        return "–"
    return f"{s.peak_rss_kb / 1024:.0f}"


def fmt_target(t: dict) -> str:
    value = "–" if t["value"] is None else f"{t['value']:.2f}"
    mark = {True: "✓", False: "✗", None: "?"}[t["meets"]]
    return f"{t['label']} {value} ({t['op']} {t['limit']:g}) {mark}"


def verdict(evaluated: list[dict]) -> str:
    if not evaluated:
        return ""
    if any(t["meets"] is False for t in evaluated):
        return "**misses**"
    if any(t["meets"] is None for t in evaluated):
        return "no data"
    return "meets"


def comparison_table(rows: list[Comparison]) -> list[str]:
    lines = [
        "| workload | scenario | kiln | peer | ceiling (curl) | targets | peak RSS MiB kiln / peer | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        s = c.summaries()
        peer = c.contenders[1] if len(c.contenders) > 1 else None
        ceiling = "curl" if "curl" in c.contenders else None
        ev = c.evaluated()
        peer_cell = f"{peer}: {fmt_time(s[peer], c.bytes)}" if peer else "–"
        ceil_cell = fmt_time(s[ceiling], c.bytes) if ceiling else "–"
        rss = f"{fmt_rss(s['kiln'])} / {fmt_rss(s[peer]) if peer else '–'}"
        lines.append(
            f"| {c.subject} | {c.scenario} | {fmt_time(s['kiln'], c.bytes)} | {peer_cell} | "
            f"{ceil_cell} | {'<br>'.join(fmt_target(t) for t in ev)} | {rss} | {verdict(ev)} |")
    return lines


def primitives_table(rows: list[Comparison]) -> list[str]:
    """One row per operation: kiln, the peer its target names, any other tools, and notes."""
    lines = [
        "| op | input | kiln | peer | others | targets | peak RSS MiB kiln / peer | verdict | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        s = c.summaries()
        peer = c.contenders[1]
        others = "<br>".join(f"{n}: {fmt_time(s[n], c.bytes)}" for n in c.contenders[2:])
        ev = c.evaluated()
        lines.append(
            f"| {c.subject} | {c.scenario} | {fmt_time(s['kiln'], c.bytes)} | "
            f"{peer}: {fmt_time(s[peer], c.bytes)} | {others or '–'} | "
            f"{'<br>'.join(fmt_target(t) for t in ev)} | "
            f"{fmt_rss(s['kiln'])} / {fmt_rss(s[peer])} | {verdict(ev)} | "
            f"{'; '.join(c.notes) or '–'} |")
    return lines


def failures(rows: list[Comparison]) -> list[str]:
    lines = []
    for c in rows:
        s = c.summaries()
        for name in c.contenders:
            err = s[name].first_error
            if err:
                one = " ".join(err.split())[:240]
                log = f" (log: `{s[name].first_log}`)" if s[name].first_log else ""
                lines.append(f"- {c.section}/{c.subject}/{c.scenario} {name}: {one}{log}")
    return lines


def scaling_tables(rows: list[Comparison]) -> list[str]:
    builds = [c for c in rows if c.section == "scaling" and c.subject.startswith("files-")]
    images = [c for c in rows if c.section == "scaling" and c.subject.startswith("img-")]
    lines = []
    if builds:
        counts = sorted({int(c.subject.split("-")[1]) for c in builds})
        series = [(tool, sc) for tool in ("kiln", "buildah") for sc in ("cold", "warm")]
        med = {}
        for c in builds:
            s = c.summaries()
            for tool in ("kiln", "buildah"):
                m = s[tool].median_s if s[tool].ok else None
                med[(tool, c.scenario, int(c.subject.split("-")[1]))] = m
        lines += ["", "### Build time by context size (median seconds)", "",
                  "| files | " + " | ".join(f"{t} {sc}" for t, sc in series) + " |",
                  "|---|" + "---|" * len(series)]
        for n in counts:
            cells = [_secs(med.get((t, sc, n))) for t, sc in series]
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        for n1, n2 in zip(counts, counts[1:]):
            cells = [_exp(scaling.exponent(n1, med.get((t, sc, n1)), n2, med.get((t, sc, n2))))
                     for t, sc in series]
            lines.append(f"| growth exponent {n1:,}→{n2:,} | " + " | ".join(cells) + " |")
    if images:
        lines += ["", "### Transfer time by image size (median seconds, MiB/s)", "",
                  "| image | MiB | op | kiln | skopeo | curl | kiln peak RSS MiB |",
                  "|---|---|---|---|---|---|---|"]
        for c in images:
            s = c.summaries()
            mib = (c.bytes or 0) / MIB
            lines.append(f"| {c.subject} | {mib:.0f} | {c.scenario} | "
                         f"{fmt_time(s['kiln'], c.bytes)} | {fmt_time(s['skopeo'], c.bytes)} | "
                         f"{fmt_time(s['curl'], c.bytes)} | {fmt_rss(s['kiln'])} |")
    return lines


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _exp(x: float | None) -> str:
    if x is None:
        return "–"
    flag = " (super-linear)" if x > scaling.SUPERLINEAR else ""
    return f"{x:.2f}{flag}"


def markdown(rows: list[Comparison], meta: dict) -> str:
    runs = meta["config"]["runs"]
    lines = [
        "# kiln benchmark",
        "",
        f"{meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores, "
        f"{meta['machine']['mem_gib']} GiB, Linux {meta['machine']['kernel']}); "
        f"kiln {meta['kiln']['revision']}; median of {runs} interleaved runs (min–max); "
        f"SHA-256 here: {meta['machine']['sha256_mib_s']:.0f} MiB/s.",
        f"Command: `{meta['command']}`",
        "",
    ]
    for section, title in (("primitives", "Primitives (one file, page cache; MiB/s of input)"),
                           ("build", "Builds (peer: buildah build --layers, chroot isolation)"),
                           ("transfer", "Transfers (loopback docker-registry)"),
                           ("scaling", "Scaling")):
        part = [c for c in rows if c.section == section]
        if not part:
            continue
        table = primitives_table if section == "primitives" else comparison_table
        lines += [f"## {title}", ""] + table(part)
        if section == "scaling":
            lines += scaling_tables(part)
        lines.append("")
    ev = [t for c in rows for t in c.evaluated()]
    met = sum(1 for t in ev if t["meets"] is True)
    missed = sum(1 for t in ev if t["meets"] is False)
    nodata = sum(1 for t in ev if t["meets"] is None)
    lines += [f"**Targets: {met} met, {missed} missed, {nodata} without data.**", ""]
    fails = failures(rows)
    if fails:
        lines += ["## Failures (first error per contender; logs in the work dir)", ""] + fails + [""]
    return "\n".join(lines)


def document(rows: list[Comparison], meta: dict) -> dict:
    return {"meta": meta, "comparisons": [c.to_json() for c in rows]}
