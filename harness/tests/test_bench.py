import unittest

from kh import bench


class Bench(unittest.TestCase):
    def test_parse(self):
        got, problems = bench.parse_bench(
            "KH-BENCH sched-pipe 37.5\nnoise\nKH-BENCH read \nKH-BENCH open-task 812.0\n"
            "KH-BENCH-FAIL enable-disable kh-bench exited 1\n")
        self.assertEqual(got, {"sched-pipe": 37.5, "open-task": 812.0})
        self.assertIn("no number: 'KH-BENCH read'", problems)
        self.assertIn("KH-BENCH-FAIL enable-disable kh-bench exited 1", problems)
        self.assertIn("messaging: missing", problems)
        self.assertNotIn("enable-disable: missing", problems)

    def test_parse_complete(self):
        text = "".join(f"KH-BENCH {w} {i + 1}.5\n" for i, w in enumerate(bench.WORKLOADS))
        got, problems = bench.parse_bench(text)
        self.assertEqual(problems, [])
        self.assertEqual(len(got), len(bench.WORKLOADS))

    def test_bench_sh_runs_every_workload(self):
        """guest/bench.sh emits each workload of WORKLOADS (the list the host requires)."""
        import re
        from kh.common import REPO
        sh = (REPO / "guest" / "bench.sh").read_text()
        named = set(re.findall(r"^\s*emit (\S+)", sh, re.M))
        loops = [m.split() for m in re.findall(r"for w in ([^;]+);", sh)]
        self.assertEqual(len(loops), 2)
        # The second loop runs each of its workloads and its floor.
        self.assertEqual(loops[1], bench.SLICE_ROWS)
        self.assertIn('for v in "$w" "floor:$w"', sh)
        slice_rows = {v for w in loops[1] for v in (w, f"floor:{w}")}
        # kh-bench mem prints the mem-task-event row.
        self.assertIn('$B mem "$N_MEM"', sh)
        slice_rows.add("mem-task-event")
        self.assertEqual(sorted(named | set(loops[0]) | slice_rows), sorted(bench.WORKLOADS))

    def test_rows_ratio_spread_and_headline(self):
        res = {"c": {"sched-pipe": [10.0, 12.0, 11.0], "floor:sched-pipe": [5.0, 5.0, 5.0],
                     "read": [100.0, 100.0, 100.0]},
               "rust": {"sched-pipe": [10.0, 13.2, 11.0], "floor:sched-pipe": [5.0, 5.0, 5.0],
                        "read": [99.0, 98.0, 97.0]}}
        rows = {r.workload: r for r in bench.summarise(res)}
        self.assertAlmostEqual(rows["sched-pipe"].ratio(), 1.0)
        self.assertAlmostEqual(max(rows["sched-pipe"].ratios()), 1.1)
        self.assertAlmostEqual(rows["read"].ratio(), 0.98)
        t = bench.table(list(rows.values()), "icount", 3)
        self.assertIn("sched-pipe", t)
        self.assertIn("6.00", t)   # overhead over the floor: 11 - 5
        h = bench.headline(list(rows.values()), 3, "icount")
        self.assertEqual(h, "bench: worst Rust/C 1.000 (sched-pipe), best 0.980 (read), "
                            "2 workloads, 3 rounds (icount)")
        self.assertIn("<svg", bench.svg_plot(list(rows.values()), "t"))
