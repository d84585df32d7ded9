import tempfile
import unittest
from pathlib import Path

from kh import build, suites, upstream
from kh.common import KhError
from kh.parsers import Case, Section


class Baseline(unittest.TestCase):
    BASE = {"perf-test/2 Open": ("pass", ""), "perf-test/8 Record": ("fail", "no HW PMU"),
            "perf-test/18 Bp": ("skip", "not supported")}

    def test_same_results(self):
        rep = suites.compare_with_baseline([
            Case("perf-test", "2 Open", "pass"), Case("perf-test", "8 Record", "fail"),
            Case("perf-test", "18 Bp", "skip")], self.BASE, "perf test")
        self.assertEqual(rep.passed, ["perf-test/2 Open"])
        self.assertEqual([k for k, _ in rep.skipped], ["perf-test/8 Record", "perf-test/18 Bp"])
        self.assertIn("no HW PMU", rep.skipped[0][1])
        self.assertEqual(rep.failed, [])

    def test_regression_and_missing_and_unknown(self):
        rep = suites.compare_with_baseline([
            Case("perf-test", "2 Open", "fail"), Case("perf-test", "99 New", "pass")],
            self.BASE, "perf test")
        failed = dict(rep.failed)
        self.assertIn("C baseline says pass", failed["perf-test/2 Open"])
        self.assertIn("not in the baseline", failed["perf-test/99 New"])
        self.assertIn("did not run", failed["perf-test/8 Record"])
        self.assertIn("did not run", failed["perf-test/18 Bp"])

    def test_improvement_is_a_difference_too(self):
        rep = suites.compare_with_baseline([
            Case("perf-test", "2 Open", "pass"), Case("perf-test", "8 Record", "pass"),
            Case("perf-test", "18 Bp", "skip")], self.BASE, "perf test")
        self.assertEqual([k for k, _ in rep.failed], ["perf-test/8 Record"])

    def test_roundtrip(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.tsv"
            suites.write_baseline(p, [Case("s", "a", "pass"), Case("s", "b", "fail", "boom")],
                                  "header\nline two", {"s/b": "known: no PMU"})
            self.assertEqual(suites.load_baseline(p),
                             {"s/a": ("pass", ""), "s/b": ("fail", "known: no PMU")})
            self.assertTrue(p.read_text().startswith("# header\n# line two\n"))

    def test_summary_line(self):
        rep = suites.Report()
        rep.ok("a")
        rep.fail("b", "x")
        self.assertEqual(rep.summary(), "1 passed, 1 failed")
        rep.skip("c", "y")
        self.assertEqual(rep.summary(), "1 passed, 1 failed, 1 skipped")


class Smoke(unittest.TestCase):
    def sec(self, name, text, rc=0):
        return Section(name, rc, text.split("\n"))

    def test_good_run(self):
        from tests.test_parsers import REPORT, STAT
        secs = {"smoke.stat": self.sec("smoke.stat", STAT),
                "smoke.group": self.sec("smoke.group", STAT),
                "smoke.record": self.sec("smoke.record", REPORT)}
        rep = suites.eval_smoke(secs)
        self.assertEqual(rep.failed, [])
        self.assertEqual(len(rep.passed), 7)

    def test_zero_context_switches_fails(self):
        from tests.test_parsers import REPORT, STAT
        secs = {"smoke.stat": self.sec("smoke.stat", STAT.replace("  42  ", "   0  ")),
                "smoke.group": self.sec("smoke.group", STAT),
                "smoke.record": self.sec("smoke.record", REPORT, rc=1)}
        rep = suites.eval_smoke(secs)
        names = [n for n, _ in rep.failed]
        self.assertIn("smoke/stat context-switches", names)
        self.assertIn("smoke/record+report", names)


class Config(unittest.TestCase):
    def test_fragment_and_check(self):
        with tempfile.TemporaryDirectory() as d:
            frag = Path(d) / "f.config"
            frag.write_text("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=8\n")
            final = Path(d) / ".config"
            final.write_text("CONFIG_A=y\nCONFIG_B=y\n")
            self.assertEqual(build.parse_fragment(frag), {"CONFIG_A": "y", "CONFIG_B": "n",
                                                          "CONFIG_C": "8"})
            bad = build.check_config(final, [frag])
            self.assertEqual(len(bad), 2)
            self.assertTrue(any("CONFIG_B=n" in b for b in bad))
            self.assertTrue(any("CONFIG_C=8" in b and "ended up as n" in b for b in bad))

    def test_unknown_profile(self):
        with self.assertRaises(KhError):
            build.fragments("x86_64", "fast-rust")

    def test_llvm_per_profile(self):
        """Both bench kernels build with one LLVM (rustc's major), the tests with another;
        LIBCLANG_PATH (bindgen) follows the profile's LLVM."""
        tc = build.versions()["toolchain"]
        for core in ("rust", "c"):
            odir = build.build_dir("x86_64", f"bench-{core}")
            self.assertEqual(build.profile_of(odir), f"bench-{core}")
            self.assertIn(f"LLVM={tc['bench_llvm']}", build.make_args("x86_64", odir))
            self.assertEqual(build.make_env(odir)["LIBCLANG_PATH"],
                             f"/usr/lib/llvm{tc['bench_llvm']}/lib")
            odir = build.build_dir("x86_64", f"debug-{core}")
            self.assertIn(f"LLVM={tc['llvm']}", build.make_args("x86_64", odir))
        with self.assertRaises(KhError):
            build.profile_of(Path("/tmp/somewhere"))


class Versions(unittest.TestCase):
    def test_pinned_available(self):
        self.assertEqual(upstream.pick_version("7.2.13-1", ["7.2.13-1", "7.2.12-1~bpo13+1"], "7.2"),
                         ("7.2.13-1", False))

    def test_fallback_to_newest_of_series(self):
        v, fb = upstream.pick_version("7.2.13-1", ["7.3.1-1", "7.2.9-1~bpo13+1", "7.2.14-1"], "7.2")
        self.assertEqual((v, fb), ("7.2.14-1", True))

    def test_no_series_version(self):
        with self.assertRaises(KhError):
            upstream.pick_version("7.2.13-1", ["7.3.1-1"], "7.2")


class Stress(unittest.TestCase):
    def test_all_loops_ran(self):
        sec = Section("stress.perf-record", 0, ["loop 1: 5 runs", "loop 2: 4 runs", "failed loops: 0"])
        rep = suites.eval_stress({"stress.perf-record": sec})
        self.assertEqual(rep.passed, ["stress/concurrent perf record"])

    def test_a_failed_loop_fails(self):
        sec = Section("stress.perf-record", 1, ["loop 1: 5 runs", "failed loops: 1"])
        rep = suites.eval_stress({"stress.perf-record": sec})
        self.assertEqual([n for n, _ in rep.failed], ["stress/concurrent perf record"])

    def test_missing_section_fails(self):
        rep = suites.eval_stress({})
        self.assertEqual(len(rep.failed), 1)


class Flaky(unittest.TestCase):
    def test_flaky_case_is_counted_as_skipped_either_way(self):
        base = {"perf-test/125 stat": ("flaky", "timing")}
        for res in ("pass", "fail"):
            rep = suites.compare_with_baseline([Case("perf-test", "125 stat", res)], base, "t")
            self.assertEqual(rep.failed, [])
            self.assertEqual(len(rep.skipped), 1)
            self.assertIn("flaky", rep.skipped[0][1])

    def test_write_marks_flaky(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.tsv"
            suites.write_baseline(p, [Case("s", "a", "fail")], "h", {}, {"s/a": "timing"})
            self.assertEqual(suites.load_baseline(p), {"s/a": ("flaky", "timing")})
