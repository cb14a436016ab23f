import unittest
from pathlib import Path

from tests import helpers  # noqa: F401
from kilnbench.tools import BuildSpec, Kiln


class KilnArgv(unittest.TestCase):
    def test_build_push_names_the_destination_and_keeps_the_context_last(self):
        spec = BuildSpec(context=Path("/ctx"), tag="bench-app", build_args={"BASE": "b:1"},
                         target="final")
        argv = Kiln(Path("/k")).build_push(Path("/root"), spec, "localhost:5000/bench/app:latest")
        self.assertEqual(argv[:4], ["/k", "--root", "/root", "build"])
        self.assertEqual(argv[-1], "/ctx")
        self.assertIn("--push", argv)
        i = argv.index("localhost:5000/bench/app:latest")
        self.assertEqual(argv[i - 1], "-t")
        self.assertEqual(argv[argv.index("--target") + 1], "final")
        # Every -t name is pushed: the local name must not be among them.
        self.assertNotIn("bench-app", argv)
        self.assertEqual(argv.count("-t"), 1)



class ScalingRuns(unittest.TestCase):
    def test_transfers_get_three_runs_unless_quick(self):
        from types import SimpleNamespace
        from kilnbench.scaling import transfer_runs
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=1, quick=False)), 3)
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=1, quick=True)), 1)
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=5, quick=False)), 5)


if __name__ == "__main__":
    unittest.main()
