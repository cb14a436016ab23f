"""Scenario orchestration with fake tools: which command runs, in which store, when."""

import tempfile
import unittest
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from tests import helpers  # noqa: F401
from tests.test_workloads import small
from kilnbench import workloads
from kilnbench.bench import Bench
from kilnbench.builds import run_workload
from kilnbench.tools import Buildah, Kiln

FAKE = """#!/bin/sh
# records its argv and the content of the edited file, fails when asked to
echo "$(basename "$0") $*" >> {calls}
cat {edit} 2>/dev/null | head -c 13 >> {calls}; echo >> {calls}
for a in "$@"; do case $a in */roots/*) mkdir -p "$a";; esac; done
[ -e {fail} ] && exit 3
exit 0
"""


class BuildOrchestration(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.wl = small(workloads.MANY_LAYERS)
        self.calls = self.dir / "calls"
        self.fail = self.dir / "fail-kiln"
        edit = self.wl.edit_file(self.dir / "work")
        for name in ("kiln", "buildah"):
            p = self.dir / name
            p.write_text(FAKE.format(calls=self.calls, edit=edit,
                                     fail=self.fail if name == "kiln" else "/nonexistent"))
            p.chmod(0o755)
        buildah = Buildah()
        buildah.binary = str(self.dir / "buildah")
        registry = SimpleNamespace(host="localhost:1")
        self.bench = Bench(workdir=self.dir / "work", runs=2, scaling_runs=1,
                           kiln=Kiln(self.dir / "kiln"), kiln_error=None, base=registry,
                           transfer=registry, busybox=Path("/bin/busybox"), buildah=buildah)

    def lines(self):
        text = self.calls.read_text().splitlines()
        return list(zip(text[0::2], text[1::2]))

    def test_interleaved_cold_warm_edit_with_the_last_cold_store_reused(self):
        rows = run_workload(self.bench, self.wl)
        self.assertEqual([r.scenario for r in rows], ["cold", "warm", "edit"])
        calls = self.lines()
        self.assertEqual(len(calls), 12)
        tools = [c.split()[0] for c, _ in calls]
        self.assertEqual(tools, ["kiln", "buildah"] * 6)
        roots = [c.split()[c.split().index("--root") + 1] for c, _ in calls]
        self.assertIn("kiln-cold-many-layers-0", roots[0])
        self.assertTrue(all("warm" in r for r in roots[2:]), roots)
        # each edit round sees a new version of the file, both tools the same one
        contents = [content for _, content in calls]
        self.assertEqual(contents[8], "edit 00000001")
        self.assertEqual(contents[9], "edit 00000001")
        self.assertEqual(contents[10], "edit 00000002")
        self.assertNotIn("edit", contents[7])
        # the file is restored and every store removed afterwards
        self.assertNotIn(b"edit", self.wl.edit_file(self.dir / "work").read_bytes()[:5])
        self.assertEqual(list((self.dir / "work" / "roots").glob("*")), [])

    def test_failing_kiln_is_recorded_and_buildah_still_measured(self):
        self.fail.touch()
        rows = run_workload(self.bench, self.wl)
        for r in rows:
            s = r.summaries()
            self.assertFalse(s["kiln"].ok, r.scenario)
            self.assertTrue(s["buildah"].ok, r.scenario)
        warm = rows[1].samples["kiln"][0]
        self.assertIn("last cold build", warm.error)

    def test_missing_kiln_binary_fails_every_kiln_run_without_running_it(self):
        self.bench.kiln = Kiln(self.dir / "nope")
        rows = run_workload(self.bench, replace(self.wl), edit=False)
        tools = [c.split()[0] for c, _ in self.lines()]
        self.assertEqual(tools, ["buildah"] * 4)
        self.assertIn("kiln binary missing", rows[0].samples["kiln"][0].error)


if __name__ == "__main__":
    unittest.main()
