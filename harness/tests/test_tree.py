import tempfile
import unittest
from pathlib import Path

from kh import tree

PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Some One <some@example.org>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] perf/core: do a thing

Why the thing is done,
over two lines.

Signed-off-by: Some One <some@example.org>
---
 a.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/a.c b/a.c
--- a/a.c
+++ b/a.c
@@ -1 +1,2 @@
 x
+y
"""


class PatchMessage(unittest.TestCase):
    def test_subject_body_and_author(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "0001-x.patch"
            p.write_text(PATCH)
            msg, info = tree.parse_patch_message(p)
        self.assertTrue(msg.startswith("perf/core: do a thing\n\nWhy the thing is done,\n"))
        self.assertIn("Signed-off-by: Some One <some@example.org>", msg)
        self.assertEqual(info["Author"], "Some One")
        self.assertEqual(info["Email"], "some@example.org")

    def test_series_reads_names_and_ignores_comments(self):
        self.assertTrue(all(p.exists() for p in tree.series()))
        names = (tree.PATCHES / "series").read_text()
        lines = [l.split("#")[0].strip() for l in names.splitlines()]
        self.assertEqual(len(tree.series()), len([l for l in lines if l and l[0] != "+"]))

    def test_every_overlay_file_is_created_by_one_patch(self):
        entries = tree.series_entries()
        created = [c for e in entries for c in e.creates]
        have = [str(f.relative_to(tree.OVERLAY)) for f in tree.overlay_files()]
        self.assertEqual(sorted(created), sorted(have))
        tree._check_creates(entries, tree.OVERLAY)


class OverlaySeries(unittest.TestCase):
    """refresh() and build_commits() on a small repository: new files enter in the patch
    that creates them, later patches change them, and linux/ holds their final content."""

    def setUp(self):
        import os
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.old_cache = os.environ.get("KH_CACHE")
        os.environ["KH_CACHE"] = str(self.root / "cache")
        self.t = tree.tree_dir()
        self.t.mkdir(parents=True)
        self.overlay, self.patches = self.root / "linux", self.root / "patches"
        self.git("init", "-q", "-b", "kh-work")
        (self.t / "a.c").write_text("".join(f"a{i}\n" for i in range(20)))
        self.commit("upstream")
        self.git("tag", "upstream")
        # 1: creates new.c and changes a.c; 2: changes new.c; 3: only creates dir/other.h.
        (self.t / "a.c").write_text((self.t / "a.c").read_text().replace("a3\n", "a3 x\n"))
        (self.t / "new.c").write_text("".join(f"n{i}\n" for i in range(30)))
        self.c1 = self.commit("perf/core: one\n\nBody one.")
        (self.t / "new.c").write_text((self.t / "new.c").read_text().replace("n5\n", "n5\nmore\n"))
        self.c2 = self.commit("perf/core: two\n\nBody two.")
        (self.t / "dir").mkdir()
        (self.t / "dir" / "other.h").write_text("h\n")
        self.c3 = self.commit("perf/core: three\n\nBody three.")

    def tearDown(self):
        import os
        if self.old_cache is None:
            os.environ.pop("KH_CACHE", None)
        else:
            os.environ["KH_CACHE"] = self.old_cache
        self.tmp.cleanup()

    def git(self, *args):
        return tree.git(*args).stdout.strip()

    def commit(self, msg):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", msg)
        return self.git("rev-parse", "HEAD")

    def trees(self, tip):
        revs = self.git("rev-list", "--reverse", f"upstream..{tip}").split()
        return [self.git("rev-parse", f"{r}^{{tree}}") for r in revs]

    def test_round_trip_gives_the_same_trees(self):
        tree.refresh(self.c3, self.overlay, self.patches)
        series = (self.patches / "series").read_text()
        self.assertEqual(series.split("\n")[1:2], ["  + new.c"])
        self.assertIn("  + dir/other.h", series)
        self.assertEqual(len(tree.series(self.patches)), 3)
        self.assertIn("more", (self.overlay / "new.c").read_text())
        # Patch 1 carries a.c only; patch 2 new.c's hunk; patch 3 no diff at all.
        p1, p2, p3 = tree.series(self.patches)
        self.assertEqual(tree._touched(p1), {"a.c"})
        self.assertEqual(tree._touched(p2), {"new.c"})
        self.assertEqual(tree._touched(p3), set())
        tip = tree.build_commits("upstream", self.overlay, self.patches)
        self.assertEqual(self.trees(tip), self.trees(self.c3))
        msg = self.git("log", "-1", "--format=%B", tip)
        self.assertTrue(msg.startswith("perf/core: three\n\nBody three."))

    def test_edit_of_linux_goes_into_the_creating_patch(self):
        tree.refresh(self.c3, self.overlay, self.patches)
        f = self.overlay / "new.c"
        f.write_text(f.read_text().replace("n20\n", "n20 edited\n"))
        tip = tree.build_commits("upstream", self.overlay, self.patches)
        first = self.git("rev-list", "--reverse", f"upstream..{tip}").split()[0]
        self.assertIn("n20 edited", self.git("show", f"{first}:new.c"))
        self.assertIn("more", self.git("show", f"{tip}:new.c"))

    def test_edit_under_a_later_hunk_fails_by_name(self):
        tree.refresh(self.c3, self.overlay, self.patches)
        f = self.overlay / "new.c"
        f.write_text(f.read_text().replace("more\n", "changed\n"))
        with self.assertRaises(tree.KhError) as e:
            tree.build_commits("upstream", self.overlay, self.patches)
        self.assertIn("0002-perf-core-two.patch", str(e.exception))
        self.assertIn("new.c", str(e.exception))

    def test_file_no_patch_creates_fails(self):
        tree.refresh(self.c3, self.overlay, self.patches)
        (self.overlay / "stray.c").write_text("x\n")
        with self.assertRaises(tree.KhError) as e:
            tree.build_commits("upstream", self.overlay, self.patches)
        self.assertIn("stray.c", str(e.exception))

    def test_created_twice_or_missing_fails(self):
        tree.refresh(self.c3, self.overlay, self.patches)
        sf = self.patches / "series"
        sf.write_text(sf.read_text() + "  + new.c\n")
        with self.assertRaises(tree.KhError) as e:
            tree.build_commits("upstream", self.overlay, self.patches)
        self.assertIn("again", str(e.exception))
        sf.write_text(sf.read_text().replace("  + new.c\n", "") + "  + gone.c\n")
        with self.assertRaises(tree.KhError) as e:
            tree.build_commits("upstream", self.overlay, self.patches)
        self.assertIn("gone.c", str(e.exception))
