"""Test helpers: import path, tree digests, tools that must not skip in CI."""

import hashlib
import os
import shutil
import sys
import unittest
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def tree_digest(root: Path) -> str:
    """sha256 over (relative path, mode bits, content) of every file under root."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def need_tool(test: unittest.TestCase, name: str) -> None:
    """Skip without the tool outside CI; fail in CI (CI=true must not skip)."""
    if shutil.which(name) is None:
        if os.environ.get("CI") == "true":
            test.fail(f"{name} is required when CI=true")
        test.skipTest(f"{name} not installed")
