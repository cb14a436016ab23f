import unittest
from pathlib import Path

from tests import helpers  # noqa: F401
from kilnbench.main import REPO, parse_args


class Flags(unittest.TestCase):
    def test_defaults(self):
        a = parse_args([])
        self.assertEqual(a.runs, 5)
        self.assertEqual(a.workdir, Path("/tmp/kiln-bench"))
        self.assertIn("scaling", a.only)

    def test_quick_means_one_run_unless_given(self):
        self.assertEqual(parse_args(["--quick"]).runs, 1)
        self.assertEqual(parse_args(["--quick", "--runs", "2"]).runs, 2)

    def test_only_accepts_commas_and_repeats(self):
        a = parse_args(["--only", "app,transfer", "--only", "many-layers"])
        self.assertEqual(a.only, ["app", "transfer", "many-layers"])

    def test_unknown_workload_is_rejected(self):
        with self.assertRaises(SystemExit):
            parse_args(["--only", "apps"])

    def test_workdir_inside_the_repo_is_rejected(self):
        with self.assertRaises(SystemExit):
            parse_args(["--workdir", str(REPO / "bench" / "work")])


if __name__ == "__main__":
    unittest.main()
