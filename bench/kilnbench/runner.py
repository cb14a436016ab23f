"""Interleaved runs: kiln, peer, kiln, peer... with untimed setup around each.

A contender's `prepare(i)` does the untimed work for run i (fresh store, empty
registry) and returns the command to time; raising SetupError records a failed
sample instead of stopping the harness.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .measure import Sample, failed, headline, run_measured, summarize
from .tools import purge_deferred
from .targets import Target


class SetupError(Exception):
    pass


def _noop(i: int) -> None:
    return None


@dataclass
class Contender:
    name: str
    prepare: Callable[[int], list[str]]
    cleanup: Callable[[int], None] = _noop


@dataclass
class Comparison:
    section: str
    subject: str
    scenario: str
    contenders: list[str]
    targets: list[Target]
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def summaries(self) -> dict:
        return {n: summarize(self.samples.get(n, [])) for n in self.contenders}

    def evaluated(self) -> list[dict]:
        s = self.summaries()
        return [t.evaluate(s) for t in self.targets]

    def to_json(self) -> dict:
        s = self.summaries()
        return {
            "section": self.section, "subject": self.subject, "scenario": self.scenario,
            "bytes": self.bytes, "notes": self.notes,
            "contenders": {n: {"summary": s[n].to_json(),
                               "samples": [x.to_json() for x in self.samples.get(n, [])]}
                           for n in self.contenders},
            "targets": [t.evaluate(s) for t in self.targets],
        }


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def _progress(label: str, sample: Sample) -> None:
    if sample.ok:
        rss = f", {sample.max_rss_kb / 1024:.0f} MiB" if sample.max_rss_kb else ""
        print(f"    {label}: {sample.seconds:.2f} s{rss}", flush=True)
    else:
        why = headline(sample.error)
        code = f"exit {sample.exit_code}" if sample.exit_code is not None else "not run"
        print(f"    {label}: FAILED ({code}) {why[:160]}", flush=True)


def compare(
    logs: Path,
    runs: int,
    comparison: Comparison,
    contenders: list[Contender],
    before_round: Callable[[int], None] | None = None,
) -> Comparison:
    """Run every contender `runs` times, interleaved, into `comparison.samples`."""
    print(f"  {comparison.section}/{comparison.subject}/{comparison.scenario} "
          f"({runs} run{'s' if runs != 1 else ''})", flush=True)
    for c in contenders:
        comparison.samples.setdefault(c.name, [])
    for i in range(runs):
        if before_round is not None:
            before_round(i)
        for c in contenders:
            log = logs / _slug(f"{comparison.section}-{comparison.subject}-"
                               f"{comparison.scenario}-{c.name}-{i}.log")
            try:
                argv = c.prepare(i)
            except SetupError as e:
                sample = failed("(setup)", f"setup failed: {e}")
            else:
                settle()
                sample = run_measured(argv, log)
            finally:
                try:
                    c.cleanup(i)
                except OSError as e:  # cleanup trouble must not lose the measurement
                    print(f"    warning: cleanup of {c.name} failed: {e}", file=sys.stderr)
            comparison.samples[c.name].append(sample)
            _progress(f"{c.name} #{i + 1}", sample)
    # The next comparison's first run must not pay for this one's deletions either: its
    # stores land in other block groups (see tools.spread_stores).
    purge_deferred()
    return comparison


def settle() -> None:
    """Flush what untimed setup and the previous command left dirty (removed stores, written
    layers) before the next timed command, so no contender pays for another's writeback or
    the disk's discards; fsync-ing tools (kiln) would otherwise pay most."""
    os.sync()


def prime(logs: Path, label: str, argv: list[str]) -> Sample:
    """An untimed preparation command (a priming build, a pull into a store)."""
    sample = run_measured(argv, logs / _slug(f"prime-{label}.log"))
    status = "ok" if sample.ok else f"FAILED (exit {sample.exit_code})"
    print(f"    prime {label}: {status}", flush=True)
    return sample


def require(sample: Sample, what: str) -> None:
    """Raise SetupError for the runs that depend on a failed preparation."""
    if not sample.ok:
        raise SetupError(f"{what} failed (exit {sample.exit_code}): "
                         f"{headline(sample.error)} [log: {sample.log}]")
