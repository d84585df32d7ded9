import unittest

from kh import guest, parsers

# Issue 21's arm64 console: a self-detected RCU stall in perf_event_exec() under smoke.record.
STALL = """[  240.1] perf: interrupt took too long
[  245.399399] rcu: INFO: rcu_sched self-detected stall on CPU
[  245.399408] rcu: \t1-....: (15602 ticks this GP) idle=ae74/1/0x4000000000000000 softirq=54885/54885 fqs=8114
[  245.399486] pc : perf_event_exec+0x190/0x468
"""

RESULTS = "KH-GUEST-UP 7.2.13+\nKH-BEGIN smoke.stat\nok\nKH-END smoke.stat rc=0\n" \
          "KH-BEGIN smoke.record\n"


class WatchdogTest(unittest.TestCase):
    def test_stall_then_silence_is_a_hang(self):
        d = guest.Watchdog(0, grace=120, no_progress=900)
        d.feed(10, "boot\n", 100)
        self.assertIsNone(d.verdict(10))
        d.feed(250, "boot\n" + STALL, 100)
        self.assertIsNone(d.verdict(250))
        self.assertIsNone(d.verdict(369))
        why = d.verdict(370)
        self.assertIn("rcu_sched self-detected stall", why)
        self.assertIn("no results output for 360s", why)

    def test_stall_with_progress_goes_on(self):
        d = guest.Watchdog(0, grace=120, no_progress=900)
        d.feed(250, STALL, 100)
        # The guest still writes results: not hung yet; the grace starts anew.
        d.feed(360, STALL, 200)
        self.assertIsNone(d.verdict(470))
        self.assertIsNotNone(d.verdict(480))

    def test_silence_alone(self):
        d = guest.Watchdog(0, grace=120, no_progress=900)
        d.feed(100, "quiet console\n", 50)
        self.assertIsNone(d.verdict(999))
        self.assertEqual(d.verdict(1000), "no results output for 900s")

    def test_soft_lockup_and_hung_task_count_as_stalls(self):
        for line in ("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [perf:123]",
                     "INFO: task kworker/0:1:12 blocked for more than 120 seconds."):
            d = guest.Watchdog(0, grace=120)
            d.feed(5, "[ 1.0] " + line + "\n", 10)
            self.assertIsNotNone(d.verdict(125), line)

    def test_report_split_across_reads(self):
        d = guest.Watchdog(0, grace=10)
        half = STALL.index("self-detected")
        d.feed(1, STALL[:half], 1)
        self.assertIsNone(d.stall_line)
        d.feed(2, STALL, 1)
        self.assertIn("self-detected stall", d.stall_line)

    def test_open_section(self):
        self.assertEqual(guest.open_section(RESULTS), "smoke.record")
        self.assertIsNone(guest.open_section(RESULTS + "x\nKH-END smoke.record rc=0\n"))
        self.assertIsNone(guest.open_section(""))


class EvidenceTest(unittest.TestCase):
    def test_from_first_stall(self):
        ev = parsers.hang_evidence("a\nb\n" + STALL)
        self.assertTrue(ev.startswith("[  245.399399] rcu: INFO: rcu_sched self-detected"))

    def test_tail_without_stall(self):
        ev = parsers.hang_evidence("\n".join(str(i) for i in range(300)))
        self.assertEqual(ev.split("\n")[0], "100")


if __name__ == "__main__":
    unittest.main()
