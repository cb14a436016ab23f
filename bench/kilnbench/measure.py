"""Run one command under `/usr/bin/time -v` and summarize repeated samples.

A sample records wall time (monotonic clock around the process), peak RSS
("Maximum resident set size", the largest process of the tree that was waited
for), the exit status and, on failure, the last lines of the command's output.
A failing command is a recorded result, never an exception.
"""

from __future__ import annotations

import os
import shlex
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

TIME_BIN = "/usr/bin/time"
DEFAULT_TIMEOUT = 1800.0
ERROR_TAIL_LINES = 6


@dataclass
class Sample:
    ok: bool
    seconds: float | None
    max_rss_kb: int | None
    exit_code: int | None
    command: str
    log: str | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    runs: int
    ok_runs: int
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    peak_rss_kb: int | None = None
    median_rss_kb: int | None = None
    first_error: str | None = None
    first_log: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        # A contender counts only when every run succeeded: a median over the
        # runs that happened to pass would hide flakiness.
        return self.runs > 0 and self.ok_runs == self.runs

    def to_json(self) -> dict:
        return asdict(self)


def failed(command: str, error: str, log: str | None = None) -> Sample:
    """A sample for a run that could not even start (missing binary, failed setup)."""
    return Sample(False, None, None, None, command, log, error)


def parse_time_v(text: str) -> dict:
    """Extract peak RSS and exit status from GNU time's `-v` report."""
    out: dict = {"max_rss_kb": None, "exit_status": None}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key == "Maximum resident set size (kbytes)":
            out["max_rss_kb"] = int(value)
        elif key == "Exit status":
            out["exit_status"] = int(value)
    return out


def tail(path: Path, lines: int = ERROR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    kept = [l for l in data.splitlines() if l.strip()][-lines:]
    return "\n".join(kept)


def run_measured(
    argv: list[str],
    log_path: Path,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Sample:
    """Run `argv` once, timed, with its output in `log_path`."""
    command = shlex.join(argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    time_path = log_path.with_suffix(".time")
    full = [TIME_BIN, "-v", "-o", str(time_path), "--", *argv]
    with open(log_path, "wb") as log:
        log.write(f"$ {command}\n".encode())
        log.flush()
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            return failed(command, f"cannot start {TIME_BIN}: {e}", str(log_path))
        # A blocking wait: Popen.wait(timeout=...) polls with sleeps of up to 50 ms, which
        # rounded every sub-second time up. The timeout is a timer that kills the group.
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        if timed_out.is_set():
            return failed(command, f"timed out after {timeout:.0f} s", str(log_path))
    try:
        report = parse_time_v(time_path.read_text(errors="replace"))
    except OSError:
        report = {"max_rss_kb": None, "exit_status": None}
    if code != 0:
        return Sample(False, seconds, report["max_rss_kb"], code, command,
                      str(log_path), tail(log_path))
    return Sample(True, seconds, report["max_rss_kb"], 0, command, str(log_path))


def headline(error: str | None) -> str:
    """The most telling line of an error tail: the first that says "error", else the last."""
    lines = [l.strip() for l in (error or "").splitlines() if l.strip() and not l.startswith("$ ")]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line
    return lines[-1] if lines else ""


def summarize(samples: list[Sample]) -> Summary:
    good = [s for s in samples if s.ok and s.seconds is not None]
    summary = Summary(runs=len(samples), ok_runs=len(good))
    bad = [s for s in samples if not s.ok]
    if bad:
        first = bad[0]
        code = f"exit {first.exit_code}" if first.exit_code is not None else "not run"
        summary.first_error = f"{code}: {headline(first.error)}"
        summary.first_log = first.log
    if good:
        secs = [s.seconds for s in good]
        summary.median_s = statistics.median(secs)
        summary.min_s = min(secs)
        summary.max_s = max(secs)
        rss = [s.max_rss_kb for s in good if s.max_rss_kb is not None]
        if rss:
            summary.peak_rss_kb = max(rss)
            summary.median_rss_kb = int(statistics.median(rss))
    return summary
