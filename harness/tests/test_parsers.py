import unittest

from kh import parsers

KTAP = """KTAP version 1
# Subtest: hw_breakpoint
# module: hw_breakpoint_test
1..3
ok 1 test_one_cpu
not ok 2 test_many_cpus
ok 3 test_one_task_on_all_cpus # SKIP no CPUs
ok 1 hw_breakpoint
"""

NESTED = """    KTAP version 1
    # Subtest: perf_rust_core_ctx
    # speed: normal
    1..2
        KTAP version 1
        # Subtest: param_case
        ok 1 first
        ok 2 second
    ok 1 param_case
    ok 2 plain_case
ok 3 perf_rust_core_ctx
"""

KSELFTEST = """TAP version 13
1..2
# Starting 2 tests from 1 test cases.
#  RUN           sigtrap_threads.remain_disabled ...
#            OK  sigtrap_threads.remain_disabled
ok 1 sigtrap_threads.remain_disabled
#  RUN           sigtrap_threads.enable_event ...
not ok 2 sigtrap_threads.enable_event
# FAILED: 1 / 2 tests passed.
"""

PERF_TEST = """\x1b[1m  2: Detect openat syscall event                          : Ok\x1b[m
  5: Parse event definition strings                          :
  5.1: Test event parsing                                    : Ok
  5.2: Parsing of all PMU events from sysfs                  : FAILED!
 18: Breakpoint overflow signal handler                      : Skip (not supported)
 65: Sigtrap                                                 : Ok
"""

STAT = """
 Performance counter stats for '/kh/bin/kh-workload 200 20':

            215.31 msec task-clock                       #    0.780 CPUs utilized
                42      context-switches                 #  195.066 /sec
                 1      cpu-migrations                   #    4.644 /sec
             1,103      page-faults                      #    5.123 K/sec

       0.276041125 seconds time elapsed
"""

REPORT = """# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 1K of event 'cpu-clock:ppp'
# Event count (approx.): 400250000
#
    98.94%  kh-workload  kh-workload       [.] kh_spin
KH-CALLCHAIN kh_spin
    98.94%  [.] kh_spin
            |
            ---main
               kh_work
               kh_spin
"""


class Sections(unittest.TestCase):
    def test_split_and_rc(self):
        log = "KH-GUEST-UP 7.2\nKH-BEGIN a\nx\ny\nKH-END a rc=3\nnoise\nKH-BEGIN b\nz\nKH-DONE rc=0\n"
        secs, done = parsers.parse_sections(log)
        self.assertEqual(done, 0)
        self.assertEqual(secs["a"].lines, ["x", "y"])
        self.assertEqual(secs["a"].rc, 3)
        self.assertIsNone(secs["b"].rc, "an unterminated section has no rc")

    def test_no_done_line(self):
        _, done = parsers.parse_sections("KH-BEGIN a\n")
        self.assertIsNone(done)

    def test_time_line_after_the_end(self):
        log = ("KH-BEGIN a\nx\nKH-END a rc=0\nKH-TIME a 10.50 42.75\n"
               "KH-BEGIN b\nKH-TIME b 1.00 2.00\nKH-END b rc=0\n")
        secs, _ = parsers.parse_sections(log)
        self.assertAlmostEqual(secs["a"].seconds, 32.25)
        self.assertEqual(secs["a"].lines, ["x"])
        # Inside a section it is the section's output, not its time.
        self.assertIsNone(secs["b"].seconds)
        self.assertEqual(secs["b"].lines, ["KH-TIME b 1.00 2.00"])


class Ktap(unittest.TestCase):
    def test_flat_suite(self):
        cases = parsers.parse_ktap(KTAP)
        self.assertEqual([(c.suite, c.name, c.result) for c in cases], [
            ("hw_breakpoint", "test_one_cpu", "pass"),
            ("hw_breakpoint", "test_many_cpus", "fail"),
            ("hw_breakpoint", "test_one_task_on_all_cpus", "skip"),
        ])

    def test_nested_parameterised_cases_are_leaves(self):
        cases = parsers.parse_ktap(NESTED)
        self.assertEqual([(c.suite, c.name) for c in cases], [
            ("param_case", "first"), ("param_case", "second"),
            ("perf_rust_core_ctx", "plain_case")])

    def test_kselftest_tap(self):
        cases = parsers.parse_ktap(KSELFTEST, top="sigtrap_threads")
        self.assertEqual([(c.name, c.result) for c in cases], [
            ("sigtrap_threads.remain_disabled", "pass"),
            ("sigtrap_threads.enable_event", "fail")])


class PerfTest(unittest.TestCase):
    def test_results_and_subtests(self):
        cases = parsers.parse_perf_test(PERF_TEST)
        got = [(c.name, c.result, c.detail) for c in cases]
        self.assertEqual(got, [
            ("2 Detect openat syscall event", "pass", ""),
            ("5.1 Test event parsing", "pass", ""),
            ("5.2 Parsing of all PMU events from sysfs", "fail", ""),
            ("18 Breakpoint overflow signal handler", "skip", "not supported"),
            ("65 Sigtrap", "pass", ""),
        ])

    def test_list(self):
        lst = parsers.perf_test_list("  1: vmlinux symtab\n  5: Parse\n  5.1: sub\n")
        self.assertEqual(lst, {"vmlinux symtab": "1", "Parse": "5"})


class PerfStatReport(unittest.TestCase):
    def test_stat(self):
        st = parsers.parse_perf_stat(STAT)
        self.assertAlmostEqual(st["task-clock"], 215.31)
        self.assertEqual(st["context-switches"], 42)
        self.assertEqual(st["cpu-migrations"], 1)
        self.assertEqual(st["page-faults"], 1103)

    def test_not_counted(self):
        st = parsers.parse_perf_stat("     <not counted>      context-switches\n"
                                     "   <not supported>      cycles\n")
        self.assertIsNone(st["context-switches"])
        self.assertIsNone(st["cycles"])

    def test_report_samples(self):
        self.assertEqual(parsers.parse_report_samples(REPORT), 1000)
        self.assertEqual(parsers.parse_report_samples("# Samples: 42  of event 'x'"), 42)
        self.assertEqual(parsers.parse_report_samples("no samples"), 0)


class Splats(unittest.TestCase):
    def test_finds_lockdep_and_warn(self):
        con = ("[    1.0] ok\n[    2.0] WARNING: possible circular locking dependency detected\n"
               "[    2.1] 7.2.13 #1 Not tainted\n")
        s = parsers.find_splats(con)
        self.assertEqual(len(s), 1)
        self.assertIn("circular locking", s[0])

    def test_refcount_and_rcu(self):
        self.assertEqual(len(parsers.find_splats("refcount_t: underflow; use-after-free.\n")), 1)
        self.assertEqual(len(parsers.find_splats(
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n")), 1)

    def test_clean_boot(self):
        self.assertEqual(parsers.find_splats("[ 0.0] Linux version 7.2.13\n[ 1.0] Run /sbin/kh-init\n"),
                         [])


class SectionEdge(unittest.TestCase):
    def test_end_marker_after_unterminated_output(self):
        secs, _ = parsers.parse_sections("KH-BEGIN r\nline\n\tjunkKH-END r rc=0\n")
        self.assertEqual(secs["r"].rc, 0)
        self.assertEqual(secs["r"].lines, ["line", "\tjunk"])


class PerfTestWhy(unittest.TestCase):
    def test_failure_signature_from_rerun(self):
        t = ("125: perf stat tests                                 : FAILED!\n"
             " 25: Use a dummy software event to keep tracking     : Skip (no cycles)\n"
             "130: perf trace                                      : FAILED! (timed out after 300 s)\n"
             "KH-PERF-TEST-WHY 125: Hide zero events stat test [Failed - metric-only command failed]\n")
        got = {c.name: c.signature for c in parsers.parse_perf_test(t)}
        self.assertEqual(got["125 perf stat tests"],
                         "Hide zero events stat test [Failed - metric-only command failed]")
        self.assertEqual(got["25 Use a dummy software event to keep tracking"], "no cycles")
        self.assertEqual(got["130 perf trace"], "timed out after 300 s")


class SignatureValues(unittest.TestCase):
    def test_operand_values_left_out(self):
        diag = ["# arm_pmu.c:378:sampling_32bit:Expected PERIODS - 1 (9) <= samples (4)",
                "# sampling_32bit: Test terminated by assertion"]
        other = [diag[0].replace("(4)", "(3)"), diag[1]]
        self.assertEqual(parsers.signature("fail", "", diag), parsers.signature("fail", "", other))
        self.assertEqual(parsers.signature("fail", "", diag),
                         "arm_pmu.c:378:sampling_32bit:Expected PERIODS - 1 <= samples | "
                         "sampling_32bit: Test terminated by assertion")
        # Another expression is another cause.
        moved = ["# arm_pmu.c:380:sampling_32bit:Expected 0 (0) == throttled (2)", diag[1]]
        self.assertNotEqual(parsers.signature("fail", "", diag),
                            parsers.signature("fail", "", moved))


class NormaliseTempNames(unittest.TestCase):
    def test_mktemp_suffix(self):
        a = "failed to open /tmp/perftool-testsuite_report.6Vt/perf_report/x: No such file"
        b = "failed to open /tmp/perftool-testsuite_report.iOY/perf_report/x: No such file"
        self.assertEqual(parsers.normalise(a), parsers.normalise(b))
        self.assertNotEqual(parsers.normalise(a), parsers.normalise(a.replace("open", "read")))
