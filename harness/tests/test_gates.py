import unittest

from kh import gates

OUT = """0001-x.patch:12: WARNING:LONG_LINE: line length of 101 exceeds 100 columns
0001-x.patch:40: ERROR:SPACING: space required after that ','
total: 1 errors, 1 warnings, 88 lines checked
"""


class Checkpatch(unittest.TestCase):
    def test_reports_read(self):
        e, w, problem = gates.checkpatch_verdict("0001-x.patch", 1, OUT, "")
        self.assertIsNone(problem)
        self.assertEqual(len(e), 1)
        self.assertEqual(len(w), 1)

    def test_clean(self):
        e, w, problem = gates.checkpatch_verdict(
            "p", 0, "total: 0 errors, 0 warnings, 10 lines checked\n", "")
        self.assertEqual((e, w, problem), ([], [], None))

    def test_did_not_run(self):
        _, _, problem = gates.checkpatch_verdict("p", 2, "", "Can't locate Foo.pm in @INC")
        self.assertIn("did not run through (exit 2, no summary line)", problem)
        self.assertIn("Foo.pm", problem)

    def test_no_summary(self):
        _, _, problem = gates.checkpatch_verdict("p", 0, "", "")
        self.assertIn("no summary line", problem)

    def test_summary_disagrees(self):
        _, _, problem = gates.checkpatch_verdict(
            "p", 1, "total: 2 errors, 0 warnings, 5 lines checked\n", "")
        self.assertIn("0 ERROR and 0 WARNING lines were read", problem)


if __name__ == "__main__":
    unittest.main()
