import unittest

from kh import crossings
from kh.common import KhError


def line(cpu, pc):
    return f"Trace {cpu}: 0x7f00deadbeef [00000000/{pc:016x}/00000000/ff020000] \n"


class Count(unittest.TestCase):
    # C function at 0x1000 (blocks 0x1000, 0x1010), Rust at 0x2000, helper at 0x3000.
    SYM = crossings.Symbols(start={0x1000: ("perf_read", "c"), 0x1100: ("put_ctx_c", "c"),
                                   0x2000: ("perf_event_ctx_lock", "rust"),
                                   0x3000: ("rust_helper_x", "helper")},
                            ranges=[(0x1000, 0x3100)], marker=0x9000,
                            sorted_starts=[0x1000, 0x1100, 0x2000, 0x3000])

    def op(self, cpu=0):
        # perf_read -> perf_event_ctx_lock (Rust) -> rust_helper_x, back in Rust, back in C.
        return [line(cpu, 0x1000), line(cpu, 0x2000), line(cpu, 0x3000), line(cpu, 0x2010),
                line(cpu, 0x1010), line(cpu, 0x1100)]

    def test_two_ops(self):
        log = [line(0, 0x2000), line(0, 0x9000)] + self.op() + self.op() + [line(0, 0x9000),
                                                                           line(0, 0x1000)]
        got = crossings.count(log, self.SYM, ["read"], 2)["read"]
        self.assertEqual(got.calls[("perf_read", "c")], 2)
        self.assertEqual(got.calls[("perf_event_ctx_lock", "rust")], 2)
        self.assertEqual(got.crossings, {("c", "rust", "perf_event_ctx_lock"): 2,
                                         ("rust", "helper", "rust_helper_x"): 2})
        table = crossings.table({"rust": {"read": got}})
        self.assertIn("| read | rust | 2.0 | 1.0 | 1.0 | 0.0 | 1.0 |", table)

    def test_other_cpu_is_not_the_caller(self):
        # CPU 1 in C between CPU 0's C block and its Rust call: still CPU 0's crossing;
        # CPU 1's own entry into Rust after a C block of CPU 0 is no crossing of CPU 1.
        log = [line(0, 0x9000), line(0, 0x1000), line(1, 0x1000), line(0, 0x2000),
               line(1, 0x1010), line(0, 0x9000)]
        got = crossings.count(log, self.SYM, ["read"], 1)["read"]
        self.assertEqual(got.crossings, {("c", "rust", "perf_event_ctx_lock"): 1})

    def test_markers_must_pair(self):
        with self.assertRaises(KhError):
            crossings.count([line(0, 0x9000)] + self.op(), self.SYM, ["read"], 1)
        with self.assertRaises(KhError):
            crossings.count([line(0, 0x9000)] * 3, self.SYM, ["read"], 1)

    def test_dfilter_and_merge(self):
        self.assertEqual(crossings.merge([(0x100, 0x180), (0x1a0, 0x200), (0x1000, 0x1001)]),
                         [(0x100, 0x200), (0x1000, 0x1001)])
        self.assertEqual(crossings.dfilter(crossings.Symbols(ranges=[(0x100, 0x200)])),
                         "0x100..0x1ff")
