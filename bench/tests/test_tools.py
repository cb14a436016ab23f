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


if __name__ == "__main__":
    unittest.main()
