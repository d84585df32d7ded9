import unittest

from kh import bisect

LOG = """  CC      kernel/events/core.o
/t/tree/kernel/events/core.c:120:7: warning: unused variable 'x' [-Wunused-variable]
  120 |         int x;
/t/tree/fs/ext4/inode.c:5:1: warning: upstream's own
  RUSTC   kernel/events/rust_core/perf_rust_core.o
warning: struct `Unpublished` is never constructed
   --> /t/tree/kernel/events/rust_core/lock.rs:276:19
    |
warning: 2 warnings emitted

  LD      vmlinux
"""


class BuildWarnings(unittest.TestCase):
    def test_clang_and_rustc_warnings_with_their_files(self):
        got = bisect.warnings(LOG, "/t/tree")
        self.assertEqual(got, [
            ("kernel/events/core.c", "kernel/events/core.c:120: unused variable 'x' "
             "[-Wunused-variable]"),
            ("fs/ext4/inode.c", "fs/ext4/inode.c:5: upstream's own"),
            ("kernel/events/rust_core/lock.rs",
             "kernel/events/rust_core/lock.rs:276: struct `Unpublished` is never constructed"),
        ])

    def test_a_clean_log_has_none(self):
        self.assertEqual(bisect.warnings("  CC      a.o\n  LD      vmlinux\n", "/t/tree"), [])


class WhatIsBuilt(unittest.TestCase):
    def test_selftests_docs_and_maintainers_alone_are_not_built(self):
        self.assertFalse(bisect.builds_kernel(
            "tools/testing/selftests/perf_events/Makefile\nDocumentation/core-api/x.rst\n"
            "MAINTAINERS\n"))
        self.assertTrue(bisect.builds_kernel("MAINTAINERS\nkernel/events/core.c\n"))
        self.assertTrue(bisect.builds_kernel("rust/helpers/list.c\n"))
