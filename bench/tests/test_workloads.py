import gzip
import hashlib
import json
import tarfile
import tempfile
import unittest
from dataclasses import replace
from pathlib import Path

from tests.helpers import tree_digest
from kilnbench import gen, oci, workloads
from kilnbench.builds import edited

SMALL = {
    "app": {"files": 300, "per_dir": 30, "asset_mb": 1, "excluded_mb": 1, "run_mb": 1},
    "multistage": {"deps": 40, "tools": 20, "src": 200, "unused_mb": 1},
    "many-layers": {"steps": 30, "files_per_copy": 3},
}


def small(wl):
    return replace(wl, params=SMALL[wl.name])


class Generators(unittest.TestCase):
    def test_random_chunks_are_deterministic_and_distinct(self):
        self.assertEqual(gen.random_chunk("s", 0, 64), gen.random_chunk("s", 0, 64))
        self.assertNotEqual(gen.random_chunk("s", 0, 64), gen.random_chunk("s", 1, 64))
        self.assertNotEqual(gen.random_chunk("s", 0, 64), gen.random_chunk("t", 0, 64))

    def test_random_data_is_incompressible(self):
        data = b"".join(gen.random_stream("x", 1 << 20))
        self.assertGreater(len(gzip.compress(data)), len(data) * 0.99)

    def test_random_reader_yields_exact_size(self):
        r = gen.RandomReader("x", 3 * gen.CHUNK + 5)
        total = 0
        while chunk := r.read(1000_000):
            total += len(chunk)
        self.assertEqual(total, 3 * gen.CHUNK + 5)

    def test_text_has_exact_size(self):
        r = gen.rng("t")
        for size in (0, 1, 99, 4000):
            self.assertEqual(len(gen.text(r, size)), size)


class Workloads(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())

    def test_every_workload_is_byte_identical_across_generations(self):
        for wl in map(small, workloads.BUILD_WORKLOADS):
            a, b = self.dir / "a", self.dir / "b"
            wl.ensure(a)
            wl.ensure(b)
            self.assertEqual(tree_digest(wl.context(a)), tree_digest(wl.context(b)), wl.name)
            self.assertTrue(wl.edit_file(a).is_file(), wl.name)

    def test_stamp_skips_regeneration_and_param_change_regenerates(self):
        wl = small(workloads.MULTISTAGE)
        ctx = wl.ensure(self.dir)
        marker = ctx / "marker"
        marker.write_text("x")
        wl.ensure(self.dir)
        self.assertTrue(marker.exists())
        bigger = replace(wl, params={**wl.params, "src": 201})
        bigger.ensure(self.dir)
        self.assertFalse(marker.exists())

    def test_stamp_is_not_inside_the_context(self):
        ctx = small(workloads.MANY_LAYERS).ensure(self.dir)
        self.assertEqual([p.name for p in ctx.iterdir() if "stamp" in p.name], [])

    def test_app_excludes_big_dir_and_logs(self):
        ctx = small(workloads.APP).ensure(self.dir)
        ignore = (ctx / ".dockerignore").read_text().split()
        self.assertIn("big-excluded", ignore)
        self.assertIn("**/*.log", ignore)
        self.assertTrue(any((ctx / "src").rglob("*.log")))
        self.assertEqual(len(list((ctx / "src").rglob("*.txt"))), 300)
        self.assertEqual((ctx / "assets" / "blob.bin").stat().st_size, 1 << 20)

    def test_many_layers_alternates_30_copy_and_run_steps(self):
        ctx = small(workloads.MANY_LAYERS).ensure(self.dir)
        steps = [l.split()[0] for l in (ctx / "Dockerfile").read_text().splitlines()
                 if l.startswith(("COPY", "RUN"))]
        self.assertEqual(len(steps), 30)
        self.assertEqual(steps[:4], ["COPY", "RUN", "COPY", "RUN"])
        # the edited file is copied by the 15th step: half of the build reruns
        self.assertIn("layers/s14/", str(small(workloads.MANY_LAYERS).edit_file(self.dir)))

    def test_multistage_has_four_stages_and_copies_from_each_used_one(self):
        ctx = small(workloads.MULTISTAGE).ensure(self.dir)
        text = (ctx / "Dockerfile").read_text()
        self.assertEqual(text.count("FROM ${BASE} AS"), 4)
        self.assertIn("COPY --from=deps", text)
        self.assertIn("COPY --from=tools", text)
        self.assertNotIn("--from=unused", text)
        self.assertEqual(workloads.MULTISTAGE.target, "final")

    def test_edit_keeps_size_and_changes_bytes(self):
        original = b"alpha beta gamma delta\n" * 3
        one, two = edited(original, 1), edited(original, 2)
        self.assertEqual(len(one), len(original))
        self.assertNotEqual(one, original)
        self.assertNotEqual(one, two)
        self.assertEqual(one, edited(original, 1))


class OciLayout(unittest.TestCase):
    def test_layout_digests_sizes_and_diff_ids_are_true(self):
        layout = Path(tempfile.mkdtemp()) / "img"

        def fill(tar):
            oci.add_dir(tar, "data")
            oci.add_random(tar, "data/x.bin", 300_000, "seed")

        digest = oci.write_layout(layout, "latest", [fill])
        blobs = layout / "blobs" / "sha256"
        for p in blobs.iterdir():
            self.assertEqual(hashlib.sha256(p.read_bytes()).hexdigest(), p.name)
        index = json.loads((layout / "index.json").read_text())
        self.assertEqual(index["manifests"][0]["digest"], digest)
        manifest = json.loads((blobs / digest[7:]).read_text())
        layer = manifest["layers"][0]
        raw = gzip.decompress((blobs / layer["digest"][7:]).read_bytes())
        self.assertEqual(layer["size"], (blobs / layer["digest"][7:]).stat().st_size)
        config = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
        self.assertEqual(config["rootfs"]["diff_ids"], ["sha256:" + hashlib.sha256(raw).hexdigest()])
        self.assertEqual([p.name for p in oci.layout_blobs(layout)],
                         [manifest["config"]["digest"][7:], layer["digest"][7:]])
        with tarfile.open(fileobj=__import__("io").BytesIO(raw)) as t:
            self.assertEqual(t.getmember("data/x.bin").size, 300_000)

    def test_layouts_are_reproducible(self):
        d = Path(tempfile.mkdtemp())
        img = workloads.SyntheticImage("img", total_mb=1, layers=2)
        busybox = Path("/bin/busybox")
        if not busybox.exists():
            self.skipTest("no /bin/busybox")
        a = img.ensure(d / "a", busybox)
        b = img.ensure(d / "b", busybox)
        self.assertEqual(tree_digest(a), tree_digest(b))


class ReadTree(unittest.TestCase):
    def test_reads_every_regular_file_once_and_skips_links(self):
        import os
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "a").mkdir()
            (root / "a" / "x").write_bytes(b"1" * 3000)
            (root / "y").write_bytes(b"22")
            os.symlink("y", root / "link")
            os.mkfifo(root / "a" / "fifo")  # must not block
            self.assertEqual(gen.read_tree(root), 3002)


if __name__ == "__main__":
    unittest.main()
