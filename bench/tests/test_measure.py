import unittest
import tempfile
from pathlib import Path

from tests import helpers  # noqa: F401
from kilnbench.measure import Sample, headline, parse_time_v, run_measured, summarize

TIME_V = """Command exited with non-zero status 3
\tCommand being timed: "sh -c exit 3"
\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:00.00
\tMaximum resident set size (kbytes): 1528
\tExit status: 3
"""


def ok(seconds, rss=1000):
    return Sample(True, seconds, rss, 0, "x")


class ParseTimeV(unittest.TestCase):
    def test_reads_peak_rss_and_exit_status(self):
        self.assertEqual(parse_time_v(TIME_V), {"max_rss_kb": 1528, "exit_status": 3})

    def test_missing_fields_are_none(self):
        self.assertEqual(parse_time_v("garbage"), {"max_rss_kb": None, "exit_status": None})


class RunMeasured(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())

    def test_success_records_time_and_rss(self):
        s = run_measured(["sh", "-c", "echo hello"], self.dir / "a.log")
        self.assertTrue(s.ok)
        self.assertIsNotNone(s.seconds)
        self.assertGreater(s.max_rss_kb, 0)
        self.assertIn("hello", (self.dir / "a.log").read_text())

    def test_failure_is_recorded_with_output_tail(self):
        s = run_measured(["sh", "-c", "echo unknown command: build >&2; exit 2"],
                         self.dir / "b.log")
        self.assertFalse(s.ok)
        self.assertEqual(s.exit_code, 2)
        self.assertIn("unknown command: build", s.error)

    def test_missing_binary_is_a_failure_not_an_exception(self):
        s = run_measured(["/nonexistent/kiln", "build"], self.dir / "c.log")
        self.assertFalse(s.ok)
        self.assertEqual(s.exit_code, 127)

    def test_timeout_kills_the_command(self):
        s = run_measured(["sleep", "30"], self.dir / "d.log", timeout=0.5)
        self.assertFalse(s.ok)
        self.assertIn("timed out", s.error)

    def test_short_commands_are_not_rounded_up_to_a_polling_interval(self):
        # A polling wait (sleeps doubling up to 50 ms) would report `sleep 0.12` as ~0.16 s.
        best = min(run_measured(["sleep", "0.12"], self.dir / f"e{i}.log").seconds
                   for i in range(3))
        self.assertLess(best - 0.12, 0.02)


class Headline(unittest.TestCase):
    def test_prefers_the_error_line_over_clap_footer(self):
        tail = "error: unexpected argument '--root' found\n\nUsage: kiln\n\nFor more information, try '--help'."
        self.assertEqual(headline(tail), "error: unexpected argument '--root' found")

    def test_falls_back_to_the_last_line(self):
        self.assertEqual(headline("$ kiln build\nstep 1\nkilled"), "killed")
        self.assertEqual(headline(None), "")


class Summarize(unittest.TestCase):
    def test_median_min_max_and_peak_rss(self):
        s = summarize([ok(3.0, 10), ok(1.0, 30), ok(2.0, 20)])
        self.assertEqual((s.median_s, s.min_s, s.max_s), (2.0, 1.0, 3.0))
        self.assertEqual(s.peak_rss_kb, 30)
        self.assertTrue(s.ok)

    def test_one_failed_run_makes_the_contender_not_ok(self):
        bad = Sample(False, 1.0, 10, 1, "x", error="boom")
        s = summarize([ok(1.0), bad])
        self.assertFalse(s.ok)
        self.assertEqual(s.ok_runs, 1)
        self.assertIn("exit 1", s.first_error)

    def test_no_samples(self):
        s = summarize([])
        self.assertFalse(s.ok)
        self.assertIsNone(s.median_s)


if __name__ == "__main__":
    unittest.main()
