"""The primitives section without timing anything: argv, targets, input stamping, output checks."""

import hashlib
import os
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from tests import helpers  # noqa: F401
from tests.test_targets import summary
from kilnbench import deps, primitives, report, targets, tools
from kilnbench.main import parse_args
from kilnbench.measure import Sample
from kilnbench.runner import Comparison, SetupError
from tests.test_runner_report import META

# Stands in for builder/examples/primitives.rs: `gen FILE MIB` writes MIB MiB of 'k' bytes
# and records each call, or fails when asked to.
FAKE = """#!/bin/sh
echo "$*" >> {calls}
[ -e {fail} ] && exit 4
[ "$1" = gen ] && head -c $(($3 * 1048576)) /dev/zero | tr '\\0' k > "$2"
exit 0
"""


class Argv(unittest.TestCase):
    def test_peers_compress_on_all_cores_at_the_layer_levels(self):
        data = Path("/d/in.bin")
        self.assertEqual(tools.pigz(data), ["pigz", "-6", "-c", "/d/in.bin"])
        self.assertEqual(tools.zstd(data), ["zstd", "-3", "-T0", "-c", "/d/in.bin"])
        self.assertEqual(tools.openssl_sha256(data), ["openssl", "dgst", "-sha256", "/d/in.bin"])

    def test_compressors_are_timed_with_output_discarded_sha256_peers_as_is(self):
        ops = {op.name: op for op in primitives.OPS}
        gz = ops["gzip"].timed(tools.pigz(Path("/d/a b")))
        self.assertEqual(gz[:4], ["sh", "-c", 'exec "$@" >/dev/null', "sh"])
        self.assertEqual(gz[4:], ["pigz", "-6", "-c", "/d/a b"])
        self.assertEqual(ops["sha256"].timed(["openssl"]), ["openssl"])
        self.assertEqual([n for n, _ in ops["sha256"].extras], ["sha256sum"])

    def test_to_devnull_discards_stdout_and_execs_the_tool(self):
        r = subprocess.run(tools.to_devnull(["sh", "-c", "echo out; echo err >&2; exit 3"]),
                           capture_output=True, text=True)
        self.assertEqual((r.stdout, r.stderr.strip(), r.returncode), ("", "err", 3))

    def test_kiln_commands(self):
        p = tools.Primitives(Path("/t/primitives"))
        self.assertEqual(p.run("zstd", Path("/d/x")), ["/t/primitives", "zstd", "/d/x"])
        self.assertEqual(p.gen(Path("/d/x"), 256), ["/t/primitives", "gen", "/d/x", "256"])

    def test_example_binary_honours_cargo_target_dir(self):
        repo = Path("/repo")
        with mock.patch.dict(os.environ, {"CARGO_TARGET_DIR": "/tgt"}):
            self.assertEqual(deps.example_binary(repo, "primitives"),
                             Path("/tgt/release/examples/primitives"))
        with mock.patch.dict(os.environ, {"CARGO_TARGET_DIR": "rel"}):
            self.assertEqual(deps.kiln_binary(repo), Path("/repo/rel/release/kiln"))
        with mock.patch.dict(os.environ):
            os.environ.pop("CARGO_TARGET_DIR", None)
            self.assertEqual(deps.example_binary(repo, "p"), Path("/repo/target/release/examples/p"))

    def test_primitives_is_a_section(self):
        self.assertEqual(parse_args(["--only", "primitives"]).only, ["primitives"])

    def test_quick_input_is_smaller(self):
        self.assertEqual(primitives.data_mib(False), 1024)
        self.assertEqual(primitives.data_mib(True), 256)


class Targets(unittest.TestCase):
    def test_throughput_limits(self):
        # kiln 1.0 s for the same bytes the peer hashes in 0.95 s: 0.95x, meets 0.9x
        r = targets.sha256_throughput()[0].evaluate(
            {"kiln": summary(1.0), "openssl": summary(0.95)})
        self.assertAlmostEqual(r["value"], 0.95)
        self.assertTrue(r["meets"])
        r = targets.gzip_throughput()[0].evaluate({"kiln": summary(1.0), "pigz": summary(0.95)})
        self.assertFalse(r["meets"])
        r = targets.zstd_throughput()[0].evaluate({"kiln": summary(1.0), "zstd": summary(0.85)})
        self.assertFalse(r["meets"])

    def test_each_op_targets_its_peer(self):
        for op in primitives.OPS:
            ev = [t.evaluate({"kiln": summary(1.0), op.peer: summary(1.0)}) for t in op.targets()]
            self.assertTrue(ev and all(t["meets"] is not None for t in ev), op.name)


class InputStamp(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.calls = self.dir / "calls"
        self.fail = self.dir / "fail"
        exe = self.dir / "primitives"
        exe.write_text(FAKE.format(calls=self.calls, fail=self.fail))
        exe.chmod(0o755)
        self.tool = tools.Primitives(exe)
        self.work = self.dir / "work"

    def ensure(self, mib=1, error=None):
        return primitives.ensure_data(self.work, self.work / "logs", self.tool, mib, error)

    def gens(self):
        return self.calls.read_text().count("gen ") if self.calls.exists() else 0

    def test_generated_once_and_again_when_the_size_changes(self):
        path = self.ensure()
        self.assertEqual(path.stat().st_size, 1 << 20)
        self.assertEqual(self.ensure(), path)
        self.assertEqual(self.gens(), 1)
        self.assertEqual(self.ensure(2).stat().st_size, 2 << 20)
        self.assertEqual(self.gens(), 2)

    def test_a_truncated_input_is_generated_again(self):
        path = self.ensure()
        path.write_bytes(b"short")
        self.ensure()
        self.assertEqual(self.gens(), 2)

    def test_a_new_generator_version_generates_again(self):
        self.ensure()
        with mock.patch.object(primitives, "GENERATOR_VERSION", primitives.GENERATOR_VERSION + 1):
            self.ensure()
        self.assertEqual(self.gens(), 2)

    def test_stamped_input_survives_a_failed_build_missing_input_does_not(self):
        self.ensure()
        self.ensure(error="cargo build failed")
        self.assertEqual(self.gens(), 1)
        with self.assertRaises(SetupError) as e:
            self.ensure(2, error="cargo build failed")
        self.assertIn("cargo build failed", str(e.exception))

    def test_failing_generator_is_a_setup_error(self):
        self.fail.touch()
        with self.assertRaises(SetupError):
            self.ensure()


class OutputCheck(unittest.TestCase):
    SIZE = 3 << 20
    DIGEST = hashlib.sha256(b"x").hexdigest()

    def test_parse_takes_the_op_line_after_the_command_echo(self):
        text = f"$ primitives gzip /d/in.bin\ngzip {self.SIZE} 123 -\n"
        self.assertEqual(primitives.parse_output(text, "gzip"), (self.SIZE, 123, "-"))
        self.assertIsNone(primitives.parse_output(text, "zstd"))
        self.assertIsNone(primitives.parse_output("gzip lots 1 -", "gzip"))

    def test_wrong_digest_or_short_read_is_reported(self):
        good = f"sha256 {self.SIZE} 32 {self.DIGEST}"
        self.assertIsNone(primitives.check_output(good, "sha256", self.SIZE, self.DIGEST))
        self.assertIn("!=", primitives.check_output(
            f"sha256 {self.SIZE} 32 {'0' * 64}", "sha256", self.SIZE, self.DIGEST))
        self.assertIn("read 5 bytes", primitives.check_output(
            "zstd 5 3 -", "zstd", self.SIZE, self.DIGEST))
        self.assertIn("no `gzip", primitives.check_output("", "gzip", self.SIZE, ""))

    def test_a_run_with_wrong_output_becomes_a_failed_run(self):
        d = Path(tempfile.mkdtemp())
        (d / "good.log").write_text(f"$ x\nzstd {self.SIZE} 9 -\n")
        (d / "bad.log").write_text("$ x\nzstd 7 9 -\n")
        good = Sample(True, 1.0, 100, 0, "x", str(d / "good.log"))
        bad = Sample(True, 0.1, 100, 0, "x", str(d / "bad.log"))
        primitives.reject_wrong_output([good, bad], "zstd", self.SIZE, "")
        self.assertTrue(good.ok)
        self.assertFalse(bad.ok)
        self.assertIn("wrong output", bad.error)
        self.assertEqual(primitives.kiln_output_bytes([good, bad], "zstd"), 9)

    def test_size_note(self):
        note = primitives.size_note(1000, 500, "pigz", 400)
        self.assertEqual(note, "compressed to 50.0% (kiln), 40.0% (pigz); size kiln/pigz 1.250")
        self.assertIn("? (pigz)", primitives.size_note(1000, 500, "pigz", None))


class Report(unittest.TestCase):
    def test_table_shows_every_contender_and_the_notes(self):
        c = Comparison("primitives", "sha256", "256 MiB", ["kiln", "openssl", "sha256sum"],
                       targets.sha256_throughput(), bytes=256 << 20)
        c.samples = {"kiln": [Sample(True, 0.2, 3000, 0, "k")],
                     "openssl": [Sample(True, 0.2, 6000, 0, "o")],
                     "sha256sum": [Sample(True, 1.0, 2000, 0, "s")]}
        c.notes.append("compressed to 50.0% (kiln)")
        md = report.markdown([c], META)
        self.assertIn("## Primitives", md)
        row = next(line for line in md.splitlines() if line.startswith("| sha256 |"))
        self.assertIn("1280 MiB/s", row)
        self.assertIn("openssl: 0.20 s", row)
        self.assertIn("sha256sum: 1.00 s, 256 MiB/s", row)
        self.assertIn("compressed to 50.0% (kiln)", row)
        self.assertIn("meets", row)


if __name__ == "__main__":
    unittest.main()
