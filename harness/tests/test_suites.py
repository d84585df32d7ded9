import os
import subprocess
import tempfile
import unittest
from pathlib import Path

from kh import build, parsers, suites, upstream
from kh.common import REPO, KhError
from kh.parsers import Case, Section


class Baseline(unittest.TestCase):
    BASE = {"perf-test/2 Open": suites.Expected("pass"),
            "perf-test/8 Record": suites.Expected("fail", "no HW PMU"),
            "perf-test/18 Bp": suites.Expected("skip", "not supported", "not supported")}

    def test_same_results(self):
        rep = suites.compare_with_baseline([
            Case("perf-test", "2 Open", "pass"), Case("perf-test", "8 Record", "fail"),
            Case("perf-test", "18 Bp", "skip", "", "not supported")], self.BASE, "perf test")
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
            Case("perf-test", "18 Bp", "skip", "", "not supported")], self.BASE, "perf test")
        self.assertEqual([k for k, _ in rep.failed], ["perf-test/8 Record"])

    def test_roundtrip(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.tsv"
            suites.write_baseline(p, [Case("s", "a", "pass"),
                                      Case("s", "b", "fail", "boom", "x.c:3:b:Expected 1")],
                                  "header\nline two", {"s/b": "known: no PMU"})
            self.assertEqual(suites.load_baseline(p),
                             {"s/a": suites.Expected("pass"),
                              "s/b": suites.Expected("fail", "known: no PMU",
                                                     "x.c:3:b:Expected 1")})
            self.assertTrue(p.read_text().startswith("# header\n# line two\n"))

    def test_summary_line(self):
        rep = suites.Report()
        rep.ok("a")
        rep.fail("b", "x")
        self.assertEqual(rep.summary(), "1 passed, 1 failed")
        rep.skip("c", "y")
        self.assertEqual(rep.summary(), "1 passed, 1 failed, 1 skipped")


class PerfTestParts(unittest.TestCase):
    """`FULL=1 PART=k/N`: the host's part of a baseline is the guest's selection."""

    def test_parse(self):
        self.assertEqual(suites.parse_part("2/4"), (2, 4))
        self.assertIsNone(suites.parse_part(None))
        for bad in ("0/4", "5/4", "1", "a/b"):
            with self.assertRaises(KhError):
                suites.parse_part(bad)

    def test_round_robin(self):
        keys = ["perf-test/1 A", "perf-test/2 B", "perf-test/21.1 C", "perf-test/125 D: sub"]
        self.assertEqual([k for k in keys if suites.in_perf_test_part(k, (1, 4))],
                         ["perf-test/1 A", "perf-test/21.1 C", "perf-test/125 D: sub"])
        self.assertEqual([k for k in keys if suites.in_perf_test_part(k, (2, 4))],
                         ["perf-test/2 B"])
        self.assertTrue(all(suites.in_perf_test_part(k, None) for k in keys))

    def test_guest_selects_the_same_numbers(self):
        # guest/perf-test.sh's perf_test_numbers, run on a fake `perf test list`.
        script = (REPO / "guest" / "perf-test.sh").read_text()
        fn = script[script.index("perf_test_numbers() {"):script.index("\n}\n", script.index(
            "perf_test_numbers() {")) + 3]
        with tempfile.TemporaryDirectory() as d:
            lst = "".join(f"{n:3d}: test {n}\n" + (f"{n:3d}.1: sub\n" if n % 5 == 0 else "")
                          for n in range(1, 23))
            (Path(d) / "list").write_text(lst)
            (Path(d) / "subset.tsv").write_text("run-cpu0\ttest 6\twhy\nrun\ttest 7\twhy\n")
            fn = fn.replace("perf test list >/tmp/perf-test-list 2>&1", f"cp {d}/list {d}/pl")
            fn = fn.replace("/tmp/perf-test-list", f"{d}/pl").replace("/tmp/perf-test-cpu0",
                                                                      f"{d}/cpu0")
            fn = fn.replace("/kh/perf-test-subset.tsv", f"{d}/subset.tsv")
            for part in ((1, 4), (2, 4), (3, 4), (4, 4)):
                got = {}
                for action in ("run", "run-cpu0"):
                    out = subprocess.run(
                        ["bash", "-c", fn + f"\nperf_test_numbers {action}"], text=True,
                        capture_output=True, check=True,
                        env={"KH_FULL": "1", "KH_PART": f"{part[0]}/{part[1]}",
                             "PATH": os.environ["PATH"]}).stdout.split()
                    got[action] = [int(x) for x in out]
                want = [n for n in range(1, 23)
                        if suites.in_perf_test_part(f"perf-test/{n} test {n}", part)]
                self.assertEqual(sorted(got["run"] + got["run-cpu0"]), want)
                self.assertEqual(got["run-cpu0"], [6] if 6 in want else [])

    def test_a_part_replaces_its_own_lines(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "full.tsv"
            suites.write_part_baseline(p, [Case("perf-test", "1 A", "pass"),
                                           Case("perf-test", "3 C", "skip", "no", "no")],
                                       "run one", {}, (1, 2))
            suites.write_part_baseline(p, [Case("perf-test", "2 B", "pass"),
                                           Case("perf-test", "4 D", "fail", "", "x")],
                                       "run two", {}, (2, 2))
            suites.write_part_baseline(p, [Case("perf-test", "1 A", "fail", "", "y"),
                                           Case("perf-test", "3 C", "pass")],
                                       "run three", {}, (1, 2))
            base = suites.load_baseline(p)
            self.assertEqual(list(base), ["perf-test/1 A", "perf-test/2 B", "perf-test/3 C",
                                          "perf-test/4 D"])
            self.assertEqual(base["perf-test/1 A"].result, "fail")
            self.assertEqual(base["perf-test/3 C"].result, "pass")
            self.assertEqual(base["perf-test/4 D"].signature, "x")
            text = p.read_text()
            self.assertIn("# part 1/2: run three", text)
            self.assertIn("# part 2/2: run two", text)
            self.assertNotIn("run one", text)

    def test_a_case_of_another_part_refuses(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(KhError):
                suites.write_part_baseline(Path(d) / "f.tsv", [Case("perf-test", "2 B", "pass")],
                                           "h", {}, (1, 2))


# guest/smoke.sh's smoke_stat_pid, as the Rust core's run of 2026-12-01 printed it.
STAT_PID = """KH-SMOKE-PID 808

 Performance counter stats for process id '808':

           1818.41 msec task-clock
                38      context-switches

       2.006426706 seconds time elapsed
"""


class Smoke(unittest.TestCase):
    def sec(self, name, text, rc=0):
        return Section(name, rc, text.split("\n"))

    def test_good_run(self):
        from tests.test_parsers import REPORT, STAT
        secs = {"smoke.stat": self.sec("smoke.stat", "KH-SMOKE-SLICES 2\n" + STAT),
                "smoke.stat_pid": self.sec("smoke.stat_pid", STAT_PID),
                "smoke.group": self.sec("smoke.group", STAT),
                "smoke.record": self.sec("smoke.record", REPORT)}
        rep = suites.eval_smoke(secs)
        self.assertEqual(rep.failed, [])
        self.assertEqual(len(rep.passed), 8)

    def test_stat_pid_of_another_pid_or_too_little_fails(self):
        for text, why in ((STAT_PID.replace("KH-SMOKE-PID 808", "KH-SMOKE-PID 809"),
                           "counts of the pid missing"),
                          (STAT_PID.replace("1818.41", "12.5"), "task-clock 12.5 (want >= 200"),
                          (STAT_PID.replace("  38  ", "   0  "), "context-switches 0.0 (want")):
            secs = {"smoke.stat_pid": self.sec("smoke.stat_pid", text)}
            self.assertIn(why, dict(suites.eval_smoke(secs).failed)["smoke/stat -p"])
        secs = {"smoke.stat_pid": self.sec("smoke.stat_pid", STAT_PID, rc=129)}
        self.assertIn("(rc=129)", dict(suites.eval_smoke(secs).failed)["smoke/stat -p"])

    def test_kh_spin_only_in_the_callchain_part_fails(self):
        from tests.test_parsers import REPORT, STAT
        report = REPORT.replace("    98.94%  kh-workload  kh-workload       [.] kh_spin\n"
                                "KH-CALLCHAIN", "    98.94%  kh-workload  [kernel]  [k] x\n"
                                "KH-CALLCHAIN")
        secs = {"smoke.stat": self.sec("smoke.stat", "KH-SMOKE-SLICES 2\n" + STAT),
                "smoke.group": self.sec("smoke.group", STAT),
                "smoke.record": self.sec("smoke.record", report)}
        failed = dict(suites.eval_smoke(secs).failed)
        self.assertIn("kh_spin missing", failed["smoke/record+report"])
        self.assertNotIn("smoke/record -g callchain", failed)

    def test_too_few_migrations_fail(self):
        from tests.test_parsers import REPORT, STAT
        for head, why in (("KH-SMOKE-SLICES 20\n", "expected >= 19 (one per change of CPU), "
                           "got 1"), ("", "no KH-SMOKE-SLICES line")):
            secs = {"smoke.stat": self.sec("smoke.stat", head + STAT),
                    "smoke.group": self.sec("smoke.group", STAT),
                    "smoke.record": self.sec("smoke.record", REPORT)}
            failed = dict(suites.eval_smoke(secs).failed)
            self.assertIn(why, failed["smoke/stat cpu-migrations"])

    def test_zero_context_switches_fails(self):
        from tests.test_parsers import REPORT, STAT
        secs = {"smoke.stat": self.sec("smoke.stat", STAT.replace("  42  ", "   0  ")),
                "smoke.group": self.sec("smoke.group", STAT),
                "smoke.record": self.sec("smoke.record", REPORT, rc=1)}
        rep = suites.eval_smoke(secs)
        names = [n for n, _ in rep.failed]
        self.assertIn("smoke/stat context-switches", names)
        self.assertIn("smoke/record+report", names)


HW = """
 Performance counter stats for '/kh/bin/kh-loop 10000000':

          82654321      cycles
          20663080      instructions

KH-LOOP-N 10000000
kh-loop 0: 12437,,cycles:u,16041696,100.00,,
kh-loop 0: 12437,,instructions:u,16041696,100.00,,
kh-loop 10000000: 20012542,,cycles:u,37542752,100.00,,
kh-loop 10000000: 20012542,,instructions:u,37542752,100.00,,
"""


class HardwareSmoke(unittest.TestCase):
    def sec(self, text, rc=0):
        return Section("smoke.hw", rc, text.split("\n"))

    def test_loop_counted(self):
        rep = suites.Report()
        suites.eval_hw(self.sec(HW), rep)
        self.assertEqual(rep.failed, [])
        self.assertEqual(len(rep.passed), 4)

    def test_loop_off_by_two_percent_fails(self):
        rep = suites.Report()
        suites.eval_hw(self.sec(HW.replace("20012542,,instructions", "20412542,,instructions")),
                       rep)
        self.assertEqual([n for n, _ in rep.failed],
                         ["smoke/hw instructions:u of a 20000000-instruction loop within 1%"])

    def test_not_supported_fails(self):
        rep = suites.Report()
        suites.eval_hw(self.sec(HW.replace("20012542,,instructions", "<not supported>,,"
                                           "instructions")), rep)
        self.assertEqual(len(rep.failed), 2)

    def test_long_events_kind(self):
        text = "# KH-ARM-PMU-LONG chained (a group holds 6 plain, 3 long events)\n"
        secs = {"kselftest.arm_pmu": Section("kselftest.arm_pmu", 0, text.split("\n"))}
        self.assertEqual(suites.eval_long_events(secs, "chained").failed, [])
        self.assertEqual(len(suites.eval_long_events(secs, "64-bit").failed), 1)


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
    KH = "stress/kh-stress (open, ioctl, mmap, fork+exec, migrate, hotplug, uncore)"
    GOOD = ["KH-STRESS open 100 3", "KH-STRESS mmap 10 0", "KH-STRESS hotplug 2 0",
            "KH-STRESS-TOTAL 112 ops 0 unexpected"]

    def sections(self, loops_rc=0, kh_rc=0, kh=None):
        return {"stress.perf-record": Section("stress.perf-record", loops_rc,
                                              ["loop 1: 5 runs", "loop 2: 4 runs",
                                               f"failed loops: {loops_rc}"]),
                "stress.kh-stress": Section("stress.kh-stress", kh_rc, kh or self.GOOD)}

    def test_all_loops_ran(self):
        rep = suites.eval_stress(self.sections())
        self.assertEqual(rep.passed, ["stress/concurrent perf record", self.KH])

    def test_a_failed_loop_fails(self):
        rep = suites.eval_stress(self.sections(loops_rc=1))
        self.assertEqual([n for n, _ in rep.failed], ["stress/concurrent perf record"])

    def test_unexpected_errno_or_idle_kind_fails(self):
        bad = self.GOOD[:-1] + ["KH-STRESS-TOTAL 112 ops 1 unexpected"]
        rep = suites.eval_stress(self.sections(kh_rc=1, kh=bad))
        self.assertEqual([n for n, _ in rep.failed], [self.KH])
        idle = ["KH-STRESS open 100 3", "KH-STRESS hotplug 0 0",
                "KH-STRESS-TOTAL 100 ops 0 unexpected"]
        rep = suites.eval_stress(self.sections(kh=idle))
        (name, why), = rep.failed
        self.assertIn("hotplug", why)

    def test_missing_section_fails(self):
        rep = suites.eval_stress({})
        self.assertEqual(len(rep.failed), 2)


class Signature(unittest.TestCase):
    BASE = {"remove_on_exec/fork_only": suites.Expected(
        "fail", "no hardware PMU",
        "remove_on_exec.c:83:fork_only:Expected self->fd != -1 | "
        "fork_only: Test terminated by assertion")}
    TAP = """TAP version 13
1..1
#  RUN           remove_on_exec.fork_only ...
{why}
#          FAIL  remove_on_exec.fork_only
not ok 1 fork_only
"""

    def cases(self, why):
        from kh import parsers
        return [Case("remove_on_exec", c.name, c.result, c.detail, c.signature)
                for c in parsers.parse_ktap(self.TAP.format(why=why))]

    def test_same_cause_is_skipped(self):
        rep = suites.compare_with_baseline(self.cases(
            "# remove_on_exec.c:83:fork_only:Expected self->fd (-1) != -1 (-1)\n"
            "# fork_only: Test terminated by assertion"), self.BASE, "kselftest")
        self.assertEqual(rep.failed, [])
        self.assertEqual(len(rep.skipped), 1)

    def test_another_cause_fails(self):
        rep = suites.compare_with_baseline(self.cases(
            "# fork_only: Test terminated unexpectedly by signal 11"), self.BASE, "kselftest")
        (name, why), = rep.failed
        self.assertIn("for another reason: here 'fork_only: Test terminated unexpectedly by "
                      "signal 11'", why)

    def test_kunit_signature_checked(self):
        ktap = """KTAP version 1
1..1
    KTAP version 1
    # Subtest: hw_breakpoint
    1..1
    # test_one: EXPECTATION FAILED at kernel/events/hw_breakpoint_test.c:{line}
    not ok 1 test_one
not ok 1 hw_breakpoint
"""
        sec = {"kunit": Section("kunit", 0, ktap.format(line=120).split("\n"))}
        sig = suites.kunit_cases(sec)[0].signature
        known = {"hw_breakpoint/test_one": suites.Expected("fail", "arm64", sig)}
        self.assertEqual(suites.eval_kunit(sec, [], known).failed, [])
        sec = {"kunit": Section("kunit", 0, ktap.format(line=133).split("\n"))}
        self.assertIn("for another reason", suites.eval_kunit(sec, [], known).failed[0][1])

    def test_normalised(self):
        from kh import parsers
        self.assertEqual(parsers.normalise("pid 12345 at 0xffff8880  took  9 s"),
                         "pid N at 0x? took 9 s")


class Kmemleak(unittest.TestCase):
    REPORT = ["unreferenced object 0xffff888004a3c000 (size 512):",
              '  comm "exec_events", pid 312, jiffies 4294937296',
              "  backtrace (crc 0):",
              "    __kmalloc_cache_noprof+0x2f5/0x3a0",
              "    alloc_perf_context+0x2a/0x90",
              "unreferenced object 0xffff888004a3d000 (size 64):",
              '  comm "fault_inject", pid 401, jiffies 4294937301',
              "KH-KMEMLEAK 2 unreferenced objects"]

    def test_clean(self):
        sec = Section("kmemleak", 0, ["KH-KMEMLEAK 0 unreferenced objects"])
        self.assertEqual(suites.eval_kmemleak({"kmemleak": sec}).passed, ["kmemleak/no leaks"])

    def test_leaks_fail_with_the_first_report(self):
        sec = Section("kmemleak", 0, self.REPORT)
        self.assertEqual(len(suites.kmemleak_objects(sec.text)), 2)
        rep = suites.eval_kmemleak({"kmemleak": sec})
        (name, why), = rep.failed
        self.assertEqual(name, "kmemleak/no leaks")
        self.assertIn("2 unreferenced objects", why)
        self.assertIn("alloc_perf_context", why)

    def test_no_kmemleak_file_fails(self):
        sec = Section("kmemleak", 2, ["kmemleak: /sys/kernel/debug/kmemleak missing"])
        self.assertEqual([n for n, _ in suites.eval_kmemleak({"kmemleak": sec}).failed],
                         ["kmemleak/scan"])


class StressCounts(unittest.TestCase):
    RESULTS = "\n".join([
        "KH-BEGIN stress-long", "stress: 30 min, 4 CPUs",
        "KH-STRESS-DETECTORS hung_task_timeout_secs=240 watchdog_thresh=30 soft_watchdog=1 "
        "rcu_cpu_stall_timeout=60",
        "KH-STRESS-ROUND 1 paranoid=0 secs=300 kh-stress=1000 unexpected=0",
        "KH-STRESS-SUM rounds=6 ops=123456 unexpected=0 trinity=1000 stress-ng=50 "
        "fault_inject_failures=0 failed=0 secs=1801",
        "KH-END stress-long rc=0",
        "KH-BEGIN kmemleak", "KH-KMEMLEAK 0 unreferenced objects", "KH-END kmemleak rc=0",
        "KH-DONE rc=0"])

    def test_clean_run(self):
        from kh import stress
        c = stress.evaluate("[    1.0] Linux version 7.2\n", self.RESULTS, False)
        self.assertEqual(c.problems, [])
        self.assertEqual(c.headline(), "stress: 30 min, 123456 ops, 0 splats, 0 leaks, 0 hangs")

    def test_splats_hangs_and_leaks_are_counted(self):
        from kh import stress
        console = ("BUG: KASAN: slab-use-after-free in put_ctx\n" + "x\n" * 40
                   + "INFO: task kh-stress:99 blocked for more than 120 seconds.\n")
        res = self.RESULTS.replace("KH-KMEMLEAK 0", "unreferenced object 0xffff (size 8):\n"
                                   "KH-KMEMLEAK 1")
        c = stress.evaluate(console, res, False)
        self.assertEqual((c.splats, c.hangs, c.leaks), (1, 1, 1))
        self.assertEqual(len(c.problems), 2)

    def test_unfinished_run(self):
        from kh import stress
        c = stress.evaluate("", "KH-BEGIN stress-long\nstress: 30 min, 4 CPUs\n", True)
        self.assertTrue(any("did not finish" in p for p in c.problems))


class RustKunitSuites(unittest.TestCase):
    SRC = """//! a file
#[kunit_tests(suite_a)]
mod tests {
    #[test]
    fn one() {}

    #[test]
    fn two() {}
}
"""
    KTAP = """KTAP version 1
1..1
    KTAP version 1
    # Subtest: suite_a
    1..2
    ok 1 one
    ok 2 two
ok 1 suite_a
"""

    def test_counts_from_source(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "k").mkdir()
            (Path(d) / "k" / "a.rs").write_text(self.SRC)
            (Path(d) / "b.rs").write_text("fn no_tests() {}\n")
            self.assertEqual(suites.rust_kunit_suites(Path(d)), {"suite_a": 2})

    def test_the_tree_declares_our_suites(self):
        got = suites.rust_kunit_suites()
        for s in ("perf_rust_core_ctx", "perf_rust_core_epc", "perf_rust_core_lookup",
                  "perf_rust_core_event_lock"):
            self.assertGreater(got.get(s, 0), 0, s)

    def kunit(self, ktap):
        return {"kunit": Section("kunit", 0, ktap.split("\n"))}

    def test_all_cases_ran(self):
        rep = suites.eval_kunit(self.kunit(self.KTAP), [], None, {"suite_a": 2})
        self.assertEqual(rep.failed, [])
        self.assertIn("kunit/suite_a (cases)", rep.passed)

    def test_a_case_missing(self):
        ktap = self.KTAP.replace("    1..2\n", "    1..1\n").replace("    ok 2 two\n", "")
        rep = suites.eval_kunit(self.kunit(ktap), [], None, {"suite_a": 2})
        self.assertIn("1 cases ran, its source declares 2", dict(rep.failed)["kunit/suite_a (cases)"])

    def test_a_suite_missing(self):
        rep = suites.eval_kunit(self.kunit(self.KTAP), [], None, {"suite_a": 2, "suite_b": 3})
        self.assertIn("did not run", dict(rep.failed)["kunit/suite_b"])


class Repeat(unittest.TestCase):
    def sections(self, results):
        out = {}
        for i, ok in enumerate(results, 1):
            line = ("ok" if ok else "not ok") + " 1 remove_on_exec.exec_stress"
            out[f"kselftest-repeat.remove_on_exec.remove_on_exec.exec_stress.{i}"] = Section(
                "x", 0 if ok else 1, ["TAP version 13", "1..1", line])
        return out

    def test_counts(self):
        got = suites.repeat_counts(self.sections([True, False, True]))
        self.assertEqual(got, {"remove_on_exec/remove_on_exec.exec_stress": (2, 3)})

    def test_verdict_bound(self):
        self.assertIsNone(suites.repeat_verdict(10, 10, 10, 10))
        self.assertIsNone(suites.repeat_verdict(0, 10, 0, 10))
        # C 10/10 is a sample, not a rate: 9 of 10 is no evidence (p = 0.5), 4 of 10 is
        # (p = 2 * C(14, 4) / C(20, 10) = 0.0054), 5 of 10 not (p = 0.0163).
        self.assertAlmostEqual(suites.fisher_lower(9, 10, 10, 10), 0.5)
        self.assertIsNone(suites.repeat_verdict(9, 10, 10, 10))
        self.assertIn("passed 4 of 10, the C core 10 of 10: Fisher's exact test",
                      suites.repeat_verdict(4, 10, 10, 10))
        self.assertIsNone(suites.repeat_verdict(5, 10, 10, 10))
        # C 6/10: 0 passes has p = C(14, 10) / C(20, 10) = 0.0054, 1 pass 0.029.
        self.assertAlmostEqual(suites.fisher_lower(0, 10, 6, 10), 1001 / 184756)
        self.assertIsNotNone(suites.repeat_verdict(0, 10, 6, 10))
        self.assertIsNone(suites.repeat_verdict(1, 10, 6, 10))
        # Ten runs each cannot tell 0 from C's 4 at 1 % (p = 0.043).
        self.assertIsNone(suites.repeat_verdict(0, 10, 4, 10))
        self.assertIn("ran 5 times", suites.repeat_verdict(5, 5, 4, 10))

    def test_compare(self):
        key = "remove_on_exec/remove_on_exec.exec_stress"
        base = {key: suites.Expected("passes", "timing", "8/10")}
        main = [Case("remove_on_exec", "remove_on_exec.exec_stress", "fail")]
        rep = suites.compare_with_baseline(main, base, "k", suites.repeat_counts(
            self.sections([True] * 7 + [False] * 3)))
        self.assertEqual(rep.failed, [])
        self.assertEqual(rep.passed, [key + " (x10)"])
        rep = suites.compare_with_baseline(main, base, "k", suites.repeat_counts(
            self.sections([True] * 1 + [False] * 9)))
        self.assertIn("passed 1 of 10, the C core 8 of 10", rep.failed[0][1])
        rep = suites.compare_with_baseline(main, base, "k", {})
        self.assertEqual(rep.failed[0][1], "was not repeated")

    def test_written(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.tsv"
            suites.write_baseline(p, [Case("r", "t", "fail")], "h", {"r/t": "why"},
                                  {"r/t": (3, 10)})
            self.assertEqual(suites.load_baseline(p)["r/t"],
                             suites.Expected("passes", "why", "3/10"))


class PerfTestRepeat(unittest.TestCase):
    """perf tests that give either result on the C core (reasons.tsv 'repeat'), in FULL runs."""
    KEY = "perf-test/108 Zstd perf.data compression/decompression of multi-record data"

    def sections(self, results):
        out = {}
        for i, r in enumerate(results, 1):
            # "killed": a run whose section did not end (no rc), though it printed Ok.
            line = ("108: Zstd perf.data compression/decompression of multi-record data : "
                    + ("Ok" if r == "killed" else r))
            out[f"perf-test-repeat.108.{i}"] = Section("x", None if r == "killed" else 0, [line])
        out["perf-test-repeat.10.1"] = Section("x", 0, ["10: Other test : Ok"])
        return out

    def test_counts(self):
        got = suites.perf_test_repeat_counts(self.sections(["Ok", "Skip", "Ok", "killed"]),
                                             [self.KEY])
        self.assertEqual(got, {self.KEY: (2, 4)})
        self.assertEqual(suites.perf_test_repeat_counts(self.sections([]), [self.KEY]), {})

    def test_compare(self):
        base = {self.KEY: suites.Expected("passes", "timing", "6/10")}
        main = [Case("perf-test", self.KEY.split("/", 1)[1], "skip")]
        rep = suites.compare_with_baseline(main, base, "perf test", suites.perf_test_repeat_counts(
            self.sections(["Ok"] * 3 + ["Skip"] * 7), [self.KEY]))
        self.assertEqual((rep.failed, rep.passed), ([], [self.KEY + " (x10)"]))
        rep = suites.compare_with_baseline(main, base, "perf test", suites.perf_test_repeat_counts(
            self.sections(["Skip"] * 10), [self.KEY]))
        self.assertIn("passed 0 of 10, the C core 6 of 10", rep.failed[0][1])

    def test_repeats_of_a_part(self):
        known = {self.KEY: suites.Expected("repeat", "timing"),
                 "perf-test/25 X": suites.Expected("-", "no PMU"),
                 "remove_on_exec/remove_on_exec.exec_stress": suites.Expected("repeat", "t")}
        self.assertEqual(suites.perf_test_repeats(known, None), [self.KEY])
        self.assertEqual(suites.perf_test_repeats(known, (4, 4)), [self.KEY])
        self.assertEqual(suites.perf_test_repeats(known, (1, 4)), [])

    def test_guest_repeats_each_listed_test(self):
        # guest/perf-test.sh's repeat loop with `section` and perf_test_one stubbed, and
        # guest/kselftest.sh's, which must leave the perf-test lines to it.
        with tempfile.TemporaryDirectory() as d:
            tsv = Path(d) / "repeat.tsv"
            tsv.write_text(f"perf-test\t{self.KEY.split('/', 1)[1]}\n"
                           "remove_on_exec\tremove_on_exec.exec_stress\n")
            script = (REPO / "guest" / "perf-test.sh").read_text()
            loop = script[script.index("if [ -s /kh/repeat.tsv ]"):].replace(
                "/kh/repeat.tsv", str(tsv))
            out = subprocess.run(
                ["bash", "-c", 'section() { echo "$1 $2 $3"; }\n' + loop], text=True,
                capture_output=True, check=True,
                env={"KH_REPEAT_N": "3", "PATH": os.environ["PATH"]}).stdout.split("\n")
            self.assertEqual(out[:-1], [f"perf-test-repeat.108.{i} perf_test_one 108"
                                        for i in (1, 2, 3)])
            ks = (REPO / "guest" / "kselftest.sh").read_text()
            loop = ks[ks.index("if [ -s /kh/repeat.tsv ]"):]
            loop = loop[:loop.index("\nfi\n") + 4].replace("/kh/repeat.tsv", str(tsv))
            out = subprocess.run(
                ["bash", "-c", 'section() { echo "$1"; }\n' + loop], text=True,
                capture_output=True, check=True,
                env={"KH_REPEAT_N": "1", "PATH": os.environ["PATH"]}).stdout.split()
            self.assertEqual(out, ["kselftest-repeat.remove_on_exec.remove_on_exec.exec_stress.1"])


class PerfTestPreconditions(unittest.TestCase):
    """perf stat tests' 'stat -p test' (`sleep 1 &; perf stat -p $!`) as CI met it on
    2026-12-01: perf started after the sleep had ended (parsers.PERF_TEST_PRECONDITIONS)."""
    BASE = {"perf-test/125 perf stat tests": suites.Expected(
        "fail", "hide zero: no HW PMU",
        "Hide zero events stat test [Failed - metric-only command failed]")}
    RUN = ("125: perf stat tests                                 : FAILED!\n"
           "KH-PERF-TEST-WHY 125: stat -p test [Failed - command failed]\n"
           "KH-PERF-TEST-THEN 125: {then}\n"
           "KH-PERF-TEST-WHY 125: Hide zero events stat test [Failed - metric-only command failed]\n"
           "KH-PERF-TEST-THEN 125: Error:\n")

    def compare(self, then):
        cases = parsers.parse_perf_test(self.RUN.format(then=then))
        return cases, suites.compare_with_baseline(cases, self.BASE, "perf test")

    def test_unmet_precondition_is_a_skip_of_its_own(self):
        cases, rep = self.compare("Problems finding threads of monitor")
        self.assertEqual(rep.failed, [])
        skipped = dict(rep.skipped)
        self.assertIn("on the C core too", skipped["perf-test/125 perf stat tests"])
        why = skipped["perf-test/125 perf stat tests: stat -p test [Failed - command failed]"]
        self.assertIn("precondition did not hold", why)
        self.assertIn("'Problems finding threads of monitor'", why)
        # Never part of a baseline.
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.tsv"
            suites.write_baseline(p, cases, "h", {})
            self.assertEqual(list(suites.load_baseline(p)), ["perf-test/125 perf stat tests"])

    def test_same_failure_with_other_evidence_fails(self):
        _, rep = self.compare("Error: failed to open counters: Invalid argument")
        (name, why), = rep.failed
        self.assertEqual(name, "perf-test/125 perf stat tests")
        self.assertIn("for another reason: here 'stat -p test [Failed - command failed] | "
                      "Hide zero events", why)
        self.assertEqual(len(rep.skipped), 0)

    def test_no_evidence_line_fails(self):
        cases = parsers.parse_perf_test(
            "125: perf stat tests : FAILED!\n"
            "KH-PERF-TEST-WHY 125: stat -p test [Failed - command failed]\n")
        rep = suites.compare_with_baseline(cases, self.BASE, "perf test")
        self.assertEqual([k for k, _ in rep.failed], ["perf-test/125 perf stat tests"])


class RunOrder(unittest.TestCase):
    def test_icount_guest_first(self):
        from kh.__main__ import run_order
        self.assertEqual(run_order(["x86_64", "arm64"]), ["arm64", "x86_64"])
        self.assertEqual(run_order(["arm64", "x86_64"]), ["arm64", "x86_64"])
        self.assertEqual(run_order(["x86_64"]), ["x86_64"])

    def test_steps_line_leaves_out_short_steps(self):
        from kh import common
        old = list(common.STEPS)
        try:
            common.STEPS[:] = [("build x", 700.4), ("selftests x", 1.2), ("guest test", 965)]
            self.assertEqual(common.steps_line(), "times: build x 700s, guest test 965s")
        finally:
            common.STEPS[:] = old


class BesideThread(unittest.TestCase):
    def test_children_run_at_nice_19_and_an_error_is_kept(self):
        import sys
        from kh.__main__ import Beside
        got = []

        def child_nice():
            r = subprocess.run([sys.executable, "-c",
                                "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                               capture_output=True, text=True, check=True)
            got.append(int(r.stdout))

        def fails():
            raise RuntimeError("no network")

        b = Beside("test steps", [child_nice, fails, child_nice])
        b.start()
        b.join()
        self.assertEqual(got, [19], "the steps after a failed one do not run")
        self.assertIsInstance(b.error, RuntimeError)
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, 0), 0, "the main thread keeps its nice")


class TestOrder(unittest.TestCase):
    """cmd_test's order with both arches, up to the first boot (everything slow faked)."""

    def test_first_boot_waits_for_its_image_and_x86_builds_beside_it(self):
        import argparse
        import threading
        import time as _time
        from unittest import mock
        from kh import __main__ as M
        events = []
        lock = threading.Lock()

        def ev(*e):
            with lock:
                events.append(e)

        def image(arch):
            _time.sleep(0.2 if arch == "arm64" else 0.05)
            ev("image", arch, threading.current_thread() is threading.main_thread())

        class FirstBoot(Exception):
            pass

        def boot(profile, parts, name, **kw):
            ev("boot", kw["arch"])
            _time.sleep(0.3)          # the x86_64 build beside the guest gets to run
            raise FirstBoot

        args = argparse.Namespace(arch="x86_64,arm64", quick=True, part=None, full=False,
                                  timeout=60)
        with mock.patch.object(M, "host_unit_tests", return_value=M.Report()), \
                mock.patch.object(M.toolchain, "install"), \
                mock.patch.object(M.treemod, "materialise"), \
                mock.patch.object(M.rootfs, "ensure_image", side_effect=image), \
                mock.patch.object(M, "prepare",
                                  side_effect=lambda p, a: ev("kernel", a) or (Path("t"), Path("o"))), \
                mock.patch.object(M.gates, "symbols"), \
                mock.patch.object(M.build, "build",
                                  side_effect=lambda t, a, p: ev("beside build", a)), \
                mock.patch.object(M.suites, "build_selftests",
                                  side_effect=lambda t, a, p, d: ev("beside selftests", a)), \
                mock.patch.object(M, "boot_with", side_effect=boot):
            with self.assertRaises(FirstBoot):
                M.cmd_test(args)
        i = events.index
        self.assertLess(i(("kernel", "arm64")), i(("boot", "arm64")))
        self.assertLess(i(("image", "arm64", False)), i(("boot", "arm64")),
                        "the arm64 boot waits for its image, built in a thread")
        self.assertIn(("image", "x86_64", False), events)
        self.assertLess(i(("kernel", "arm64")), i(("beside build", "x86_64")),
                        "x86_64's build starts after arm64's kernel")
        self.assertLess(i(("beside build", "x86_64")), i(("boot", "arm64")),
                        "x86_64's build does not wait for the arm64 image")
        self.assertLess(i(("beside build", "x86_64")), i(("beside selftests", "x86_64")))
        self.assertNotIn(("kernel", "x86_64"), events, "the x86_64 part did not begin")
