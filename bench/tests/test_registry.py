"""The raw curl scripts and the registry wrapper against a real docker-registry."""

import hashlib
import subprocess
import tempfile
import unittest
import urllib.request
from pathlib import Path

from tests.helpers import need_tool
from kilnbench import oci
from kilnbench.registry import Registry
from kilnbench.tools import RawCurl


class RawCurlAgainstRegistry(unittest.TestCase):
    def setUp(self):
        need_tool(self, "docker-registry")
        need_tool(self, "curl")
        self.tmp = Path(tempfile.mkdtemp())
        self.layout = self.tmp / "img"

        def fill(tar):
            oci.add_random(tar, "x.bin", 2_000_000, "reg")
        oci.write_layout(self.layout, "latest", [fill, fill])
        self.blobs = oci.layout_blobs(self.layout)
        self.registry = Registry("test", self.tmp).start()
        self.addCleanup(self.registry.stop)

    def run_ok(self, argv):
        r = subprocess.run(argv, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_raw_push_then_raw_pull_round_trip(self):
        curl = RawCurl()
        self.run_ok(curl.push(self.registry.url, "bench/x", self.blobs))
        for b in self.blobs:
            url = f"{self.registry.url}/v2/bench/x/blobs/sha256:{b.name}"
            with urllib.request.urlopen(url) as r:
                self.assertEqual(hashlib.sha256(r.read()).hexdigest(), b.name)
        self.run_ok(curl.pull(self.registry.url, "bench/x", ["sha256:" + b.name for b in self.blobs]))

    def test_raw_pull_fails_on_a_missing_blob(self):
        r = subprocess.run(RawCurl().pull(self.registry.url, "bench/x", ["sha256:" + "0" * 64]),
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sha256:" + "0" * 64, r.stderr)

    def test_reset_empties_the_registry(self):
        self.run_ok(RawCurl().push(self.registry.url, "bench/x", self.blobs[:1]))
        self.registry.reset()
        url = f"{self.registry.url}/v2/bench/x/blobs/sha256:{self.blobs[0].name}"
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
        self.assertEqual(e.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
