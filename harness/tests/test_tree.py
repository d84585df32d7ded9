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
        self.assertEqual(len(tree.series()),
                         len([l for l in names.splitlines() if l.split("#")[0].strip()]))
