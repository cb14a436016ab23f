import unittest

from tests import helpers  # noqa: F401
from kilnbench import targets
from kilnbench.measure import Sample, summarize


def summary(*seconds, rss=2048, fail=False):
    samples = [Sample(True, s, rss, 0, "x") for s in seconds]
    if fail:
        samples.append(Sample(False, None, None, 2, "x", error="no"))
    return summarize(samples)


class Targets(unittest.TestCase):
    def test_time_ratio_meets_and_misses(self):
        t = targets.time_ratio("kiln", "buildah", 0.5)
        r = t.evaluate({"kiln": summary(1.0), "buildah": summary(4.0)})
        self.assertEqual((r["value"], r["meets"]), (0.25, True))
        r = t.evaluate({"kiln": summary(3.0), "buildah": summary(4.0)})
        self.assertFalse(r["meets"])

    def test_throughput_ratio_is_peer_time_over_kiln_time(self):
        t = targets.throughput_ratio("kiln", "skopeo", 1.5)
        r = t.evaluate({"kiln": summary(2.0), "skopeo": summary(4.0)})
        self.assertEqual((r["value"], r["meets"]), (2.0, True))

    def test_failed_kiln_is_no_data_never_a_pass(self):
        for t in targets.cold_build() + targets.pull() + targets.warm_build():
            r = t.evaluate({"kiln": summary(fail=True), "buildah": summary(4.0),
                            "skopeo": summary(4.0)})
            self.assertIsNone(r["meets"], t.label)

    def test_partly_failed_kiln_is_no_data(self):
        t = targets.time_ratio("kiln", "buildah", 0.5)
        r = t.evaluate({"kiln": summary(0.1, fail=True), "buildah": summary(4.0)})
        self.assertIsNone(r["meets"])

    def test_peak_rss_in_mib(self):
        t = targets.peak_rss_mib("kiln", 64)
        r = t.evaluate({"kiln": summary(1.0, rss=70 * 1024)})
        self.assertEqual((r["value"], r["meets"]), (70.0, False))

    def test_warm_absolute_limit(self):
        t = targets.seconds("kiln", 0.2)
        self.assertTrue(t.evaluate({"kiln": summary(0.15)})["meets"])
        self.assertFalse(t.evaluate({"kiln": summary(0.25)})["meets"])


if __name__ == "__main__":
    unittest.main()
