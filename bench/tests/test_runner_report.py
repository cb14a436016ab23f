import json
import tempfile
import unittest
from pathlib import Path

from tests import helpers  # noqa: F401
from kilnbench import report, scaling, targets
from kilnbench.runner import Comparison, Contender, SetupError, compare

META = {
    "date": "2024-01-01 00:00 UTC", "command": "bench/run --quick",
    "machine": {"cpu": "cpu", "cores": 2, "mem_gib": 4, "kernel": "6", "sha256_mib_s": 1000},
    "kiln": {"revision": "abc"}, "config": {"runs": 2},
}


class Compare(unittest.TestCase):
    def setUp(self):
        self.logs = Path(tempfile.mkdtemp())

    def test_runs_are_interleaved_and_setup_failures_recorded(self):
        order = []

        def prep(name, argv):
            def prepare(i):
                order.append((name, i))
                if argv is None:
                    raise SetupError("kiln binary missing")
                return argv
            return prepare

        c = Comparison("build", "app", "cold", ["kiln", "buildah"], targets.cold_build())
        rounds = []
        compare(self.logs, 3, c, [Contender("kiln", prep("kiln", None)),
                                  Contender("buildah", prep("buildah", ["true"]))],
                before_round=rounds.append)
        self.assertEqual(order, [("kiln", 0), ("buildah", 0), ("kiln", 1), ("buildah", 1),
                                 ("kiln", 2), ("buildah", 2)])
        self.assertEqual(rounds, [0, 1, 2])
        self.assertEqual([s.ok for s in c.samples["kiln"]], [False] * 3)
        self.assertIn("kiln binary missing", c.samples["kiln"][0].error)
        self.assertEqual([s.ok for s in c.samples["buildah"]], [True] * 3)

    def test_failing_command_gives_no_data_verdict_and_a_failure_line(self):
        c = Comparison("build", "app", "cold", ["kiln", "buildah"], targets.cold_build())
        compare(self.logs, 1, c, [
            Contender("kiln", lambda i: ["sh", "-c", "echo 'error: unknown command build' >&2; exit 2"]),
            Contender("buildah", lambda i: ["true"]),
        ])
        md = report.markdown([c], META)
        self.assertIn("| app | cold | FAIL |", md)
        self.assertIn("no data", md)
        self.assertIn("unknown command build", md)
        doc = report.document([c], META)
        json.dumps(doc)  # serializable
        self.assertFalse(doc["comparisons"][0]["contenders"]["kiln"]["summary"]["ok_runs"])


class Scaling(unittest.TestCase):
    def test_exponent(self):
        self.assertAlmostEqual(scaling.exponent(1000, 1.0, 10000, 10.0), 1.0)
        self.assertAlmostEqual(scaling.exponent(1000, 1.0, 10000, 100.0), 2.0)
        self.assertIsNone(scaling.exponent(1000, None, 10000, 1.0))

    def test_superlinear_growth_is_flagged(self):
        self.assertIn("super-linear", report._exp(1.6))
        self.assertNotIn("super-linear", report._exp(1.0))


if __name__ == "__main__":
    unittest.main()
