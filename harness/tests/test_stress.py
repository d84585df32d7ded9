import re
import unittest
from unittest import mock

from kh import stress

KMEMLEAK = "KH-BEGIN kmemleak\nKH-KMEMLEAK 0 unreferenced objects\nKH-END kmemleak rc=0\n"


DETECTORS = ("KH-STRESS-DETECTORS hung_task_timeout_secs=240 watchdog_thresh=30 "
             "soft_watchdog=1 rcu_cpu_stall_timeout=60")
SUM = ("KH-STRESS-SUM rounds=2 ops=100 unexpected=0 trinity=9 stress-ng=5 "
       "fault_inject_failures=0 failed=0 secs=571")


def results(body: str, rc: int, detectors: str = DETECTORS, kmemleak: str = KMEMLEAK) -> str:
    return (f"KH-BEGIN stress-long\nstress: 10 min, 2 CPUs\n{detectors}\n{body}\n"
            f"KH-END stress-long rc={rc}\n" + kmemleak + "KH-DONE rc=0\n")


class Evaluate(unittest.TestCase):
    def test_clean_run(self):
        c = stress.evaluate("", results(SUM, 0), False)
        self.assertEqual(c.problems, [], c.problems)
        # 571 s by the guest's uptime: its minutes, not the 10 asked for.
        self.assertEqual(c.headline(), "stress: 10 min, 100 ops, 0 splats, 0 leaks, 0 hangs")
        c = stress.evaluate("", results(SUM.replace("secs=571", "secs=290"), 0), False)
        self.assertEqual(c.headline(), "stress: 5 min, 100 ops, 0 splats, 0 leaks, 0 hangs")

    def test_each_detector_report_is_a_hang(self):
        console = ("[ 1.0] INFO: task kworker/0:1:42 blocked for more than 241 seconds.\n"
                   + "x\n" * 40 +
                   "[ 2.0] watchdog: BUG: soft lockup - CPU#1 stuck for 63s! [kh-stress:99]\n"
                   + "x\n" * 40 +
                   "[ 3.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n"
                   + "x\n" * 40 +
                   "[ 4.0] WARNING: kernel/events/core.c:11172 at perf_swevent_add\n")
        c = stress.evaluate(console, results(SUM, 0), False)
        self.assertEqual((c.hangs, c.splats), (3, 1))
        self.assertIn("4 console reports", c.problems[0])

    def test_a_detector_off_fails_the_run(self):
        for det, why in ((DETECTORS.replace("soft_watchdog=1", "soft_watchdog=0"),
                          "hang detectors off (soft_watchdog = 0)"),
                         ("", "hang detectors off (all unknown: no KH-STRESS-DETECTORS")):
            c = stress.evaluate("", results(SUM, 0, detectors=det), False)
            self.assertEqual(len(c.problems), 1, c.problems)
            self.assertIn(why, c.problems[0])
            self.assertIn("no hang detectors", c.headline())
        # The debug kernel (KIND=debug) has none: said in the headline, not a problem.
        c = stress.evaluate("", results(SUM, 0, detectors=""), False, need_detectors=False)
        self.assertEqual(c.problems, [])
        self.assertIn("0 leaks, no hang detectors", c.headline())

    def test_no_leak_scan_is_not_0_leaks(self):
        c = stress.evaluate("", results(SUM, 0, kmemleak=""), False)
        self.assertIn("no leak scan", c.headline())
        self.assertEqual(len(c.problems), 1, c.problems)

    def test_a_failed_load_is_named(self):
        c = stress.evaluate("", results(
            "KH-STRESS-FAILED round 2: perf stat -- stress-ng timed out after 223 s (exit 124)"
            "\n" + SUM.replace("failed=0", "failed=1"), 1), False)
        self.assertEqual(len(c.problems), 1, c.problems)
        self.assertIn("a load failed or did nothing (round 2: perf stat -- stress-ng timed out",
                      c.problems[0])


class Selfcheck(unittest.TestCase):
    SPLATS = ("[ 50.1] lkdtm: Performing direct entry WARNING\n"
              "[ 50.2] WARNING: drivers/misc/lkdtm/bugs.c:123 at lkdtm_WARNING+0x1a/0x30\n"
              + "x\n" * 40 +
              "[ 51.0] BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE+0x1/0x2\n"
              + "x\n" * 40 +
              "[ 52.0] refcount_t: saturated; leaking memory.\n"
              + "x\n" * 40 +
              "[ 90.0] INFO: task bash:201 blocked for more than 20 seconds.\n")

    LEAK = ("KH-BEGIN kmemleak\n"
            "unreferenced object 0xff110001056e8000 (size 16384):\n"
            "  comm \"bash\", pid 812, jiffies 4294712345\n"
            "  backtrace (crc 5f3a0e21):\n"
            "    __kmalloc_large_noprof+0x24/0xa0\n"
            "    lkdtm_KMALLOC_LEAK+0x1b/0x60\n"
            "    lkdtm_do_action+0x2a/0x50\n"
            "KH-KMEMLEAK 1 unreferenced objects\nKH-END kmemleak rc=0\nKH-DONE rc=0\n")
    RACE = ("[ 30.0] BUG: KCSAN: data-race in lkdtm_DATA_RACE / lkdtm_race_thread\n"
            + "x\n" * 40)

    def test_every_report_found_and_counted(self):
        got = stress.selfcheck_verdicts("splats", self.SPLATS, self.LEAK)
        self.assertEqual([ok for _, ok, _ in got], [True] * 5, got)
        self.assertIn("counted in leaks (1)", got[4][2])
        got = stress.selfcheck_verdicts("kcsan", self.RACE)
        self.assertEqual([ok for _, ok, _ in got], [True], got)
        self.assertIn("counted in kcsan", got[0][2])
        lock = ("[ 20.0] watchdog: BUG: soft lockup - CPU#1 stuck for 11s! [sh:300]\n"
                + "x\n" * 40 + "[ 40.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n")
        got = stress.selfcheck_verdicts("lockup", lock)
        self.assertEqual([ok for _, ok, _ in got], [True] * 2, got)

    def test_missing_report_fails(self):
        got = stress.selfcheck_verdicts("splats", self.SPLATS.replace("refcount_t:", "rc:"),
                                        self.LEAK)
        (what, ok, why), = [g for g in got if not g[1]]
        self.assertIn("REFCOUNT_INC_OVERFLOW", what)
        self.assertEqual(why, "no such report on the console")

    def test_leak_missing_or_uncounted_fails(self):
        # Another object only: ours not found.
        got = stress.selfcheck_verdicts("splats", self.SPLATS,
                                        self.LEAK.replace("lkdtm_KMALLOC_LEAK", "kstrdup"))
        self.assertEqual(got[4][1:], (False, "no such object in the kmemleak report"))
        # No scan at all: said.
        got = stress.selfcheck_verdicts("splats", self.SPLATS, "KH-DONE rc=0\n")
        self.assertFalse(got[4][1])
        self.assertIn("the kmemleak scan did not run", got[4][2])
        # The scan failed after its report: the object is there, the count is not.
        got = stress.selfcheck_verdicts("splats", self.SPLATS,
                                        self.LEAK.replace("kmemleak rc=0", "kmemleak rc=2"))
        self.assertFalse(got[4][1])
        self.assertIn("was not counted", got[4][2])

    def test_kcsan_report_outside_the_list_fails(self):
        # With KCSAN_RE not knowing the report, the stress run would count it as a splat.
        with mock.patch.object(stress, "KCSAN_RE",
                               re.compile(r"BUG: KCSAN: assert: race in (\S+)(?: / (\S+))?")):
            got = stress.selfcheck_verdicts("kcsan", self.RACE)
        self.assertFalse(got[0][1])
        self.assertIn("was counted in splats", got[0][2])

    def test_report_counted_elsewhere_fails(self):
        # With the soft-lockup detector's report missing from HANG_RE (the rule before
        # 2026-12-01: hung tasks only), it would be a splat.
        with mock.patch.object(stress, "HANG_RE",
                               re.compile(r"INFO: task .* blocked for more than")):
            got = stress.selfcheck_verdicts(
                "lockup", "[ 20.0] watchdog: BUG: soft lockup - CPU#1 stuck for 11s!\n")
        self.assertFalse(got[0][1])
        self.assertIn("was counted in splats", got[0][2])


KCSAN_CONSOLE = (
    "[ 60.0] ==================================================================\n"
    "[ 60.0] BUG: KCSAN: data-race in perf_event_update_userpage / perf_mmap_fault\n"
    + "x\n" * 40 +
    "[ 61.0] BUG: KCSAN: data-race in perf_mmap_fault / perf_event_update_userpage\n"
    + "x\n" * 40 +
    "[ 62.0] BUG: KCSAN: data-race in _RNvNtCs1_14perf_rust_core3ctx7put_ctx+0x10/0x80\n"
    + "x\n" * 40 +
    "[ 63.0] WARNING: kernel/events/core.c:11172 at perf_swevent_add\n")


class Kcsan(unittest.TestCase):
    def test_reports_are_listed_not_splats(self):
        c = stress.evaluate(KCSAN_CONSOLE, results(SUM, 0), False, kcsan=True)
        self.assertEqual(c.splats, 1)       # the WARNING only
        self.assertEqual(c.kcsan, [("_RNvNtCs1_14perf_rust_core3ctx7put_ctx",),
                                   ("perf_event_update_userpage", "perf_mmap_fault")])
        self.assertIn("2 KCSAN data races", c.headline())
        # Another kind counts them as splats, as any BUG.
        self.assertEqual(stress.evaluate(KCSAN_CONSOLE, results(SUM, 0), False).splats, 4)

    def test_verdict(self):
        races = stress.kcsan_reports(KCSAN_CONSOLE)
        ours = {"_RNvNtCs1_14perf_rust_core3ctx7put_ctx", "find_get_context"}
        control = [("perf_event_update_userpage", "perf_mmap_fault")]
        got = stress.kcsan_verdict(races, ours, control, "rust")
        self.assertEqual(len(got), 2, got)
        self.assertIn("1 KCSAN reports name our code: _RNvNtCs1_14perf_rust_core3ctx7put_ctx",
                      got[0])
        self.assertIn("1 KCSAN reports the C core did not give", got[1])
        # Upstream's race on both cores: nothing to say; no control: said.
        self.assertEqual(stress.kcsan_verdict(control, ours, control, "rust"), [])
        self.assertIn("make stress KIND=kcsan CORE=c",
                      stress.kcsan_verdict(control, ours, None, "rust")[0])
        # The C control is listed, not judged against our functions.
        self.assertEqual(stress.kcsan_verdict(races, ours, control, "c"), [])


if __name__ == "__main__":
    unittest.main()
