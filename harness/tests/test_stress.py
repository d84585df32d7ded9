import unittest

from kh import stress

KMEMLEAK = "KH-BEGIN kmemleak\nKH-KMEMLEAK 0 unreferenced objects\nKH-END kmemleak rc=0\n"


def results(body: str, rc: int) -> str:
    return (f"KH-BEGIN stress-long\nstress: 10 min, 2 CPUs\n{body}\nKH-END stress-long rc={rc}\n"
            + KMEMLEAK + "KH-DONE rc=0\n")


class Evaluate(unittest.TestCase):
    def test_clean_run(self):
        c = stress.evaluate("", results(
            "KH-STRESS-SUM rounds=2 ops=100 unexpected=0 trinity=9 stress-ng=5 "
            "fault_inject_failures=0 failed=0", 0), False)
        self.assertEqual(c.problems, [], c.problems)
        self.assertEqual(c.headline(), "stress: 10 min, 100 ops, 0 splats, 0 leaks, 0 hangs")

    def test_a_failed_load_is_named(self):
        c = stress.evaluate("", results(
            "KH-STRESS-FAILED round 2: perf stat -- stress-ng timed out after 223 s (exit 124)"
            "\nKH-STRESS-SUM rounds=2 ops=100 unexpected=0 trinity=9 stress-ng=5 "
            "fault_inject_failures=0 failed=1", 1), False)
        self.assertEqual(len(c.problems), 1, c.problems)
        self.assertIn("a load failed or did nothing (round 2: perf stat -- stress-ng timed out",
                      c.problems[0])


if __name__ == "__main__":
    unittest.main()
