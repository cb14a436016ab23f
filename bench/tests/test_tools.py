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



class DeferredRemovals(unittest.TestCase):
    def setUp(self):
        import tempfile
        from kilnbench import tools
        self.tools = tools
        self.tmp = tempfile.TemporaryDirectory()
        self.roots = Path(self.tmp.name) / "roots"
        self.roots.mkdir()
        tools.defer_removals(self.roots)
        self.addCleanup(tools.defer_removals, None)
        self.addCleanup(self.tmp.cleanup)

    def store(self, name: str) -> Path:
        p = self.roots / name
        (p / "blobs").mkdir(parents=True)
        (p / "blobs" / "x").write_text("x")
        return p

    def test_stores_under_roots_wait_in_the_trash_until_roots_go(self):
        a, b = self.store("kiln-cold-0"), self.store("kiln-cold-0-again")
        self.tools.remove_tree(a)
        self.tools.remove_tree(b)
        self.assertFalse(a.exists() or b.exists())
        self.assertEqual(len(list((self.roots / ".trash").iterdir())), 2)
        self.tools.remove_tree(self.roots)
        self.assertFalse(self.roots.exists())

    def test_purge_empties_the_trash_between_comparisons(self):
        keep = self.store("kiln-warm")
        self.tools.remove_tree(self.store("kiln-cold-0"))
        self.tools.purge_deferred()
        self.assertFalse((self.roots / ".trash").exists())
        self.assertTrue(keep.exists())

    def test_low_disk_space_removes_at_once_and_empties_the_trash(self):
        self.tools.remove_tree(self.store("first"))
        from unittest import mock
        with mock.patch.object(self.tools, "MIN_FREE_BYTES", 1 << 62):
            self.tools.remove_tree(self.store("second"))
        self.assertFalse((self.roots / "second").exists())
        self.assertFalse((self.roots / ".trash").exists())

    def test_paths_outside_roots_are_removed_at_once(self):
        other = Path(self.tmp.name) / "elsewhere"
        other.mkdir()
        self.tools.remove_tree(other)
        self.assertFalse(other.exists())
        self.assertFalse((self.roots / ".trash").exists())


class SpreadStores(unittest.TestCase):
    def test_the_roots_dir_gets_the_topdir_flag_where_the_filesystem_has_one(self):
        import subprocess
        import tempfile
        from kilnbench.tools import spread_stores
        with tempfile.TemporaryDirectory() as d:
            if spread_stores(Path(d)):
                attrs = subprocess.run(["lsattr", "-d", d], capture_output=True, text=True)
                self.assertIn("T", attrs.stdout.split()[0])


class ScalingRuns(unittest.TestCase):
    def test_transfers_get_three_runs_unless_quick(self):
        from types import SimpleNamespace
        from kilnbench.scaling import transfer_runs
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=1, quick=False)), 3)
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=1, quick=True)), 1)
        self.assertEqual(transfer_runs(SimpleNamespace(scaling_runs=5, quick=False)), 5)


if __name__ == "__main__":
    unittest.main()
