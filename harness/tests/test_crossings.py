import unittest

from kh import crossings
from kh.common import KhError


def line(cpu, pc, cflags="ff020000"):
    return f"Trace {cpu}: 0x7f00deadbeef [00000000/{pc:016x}/00000000/{cflags}] \n"


def listing(pc, n):
    """QEMU's -d in_asm output for a block of n instructions at pc."""
    return (["----------------\n", f"IN: sym_{pc:x}\n"]
            + [f"0x{pc + 4 * i:016x}:  90                       nop\n" for i in range(n)]
            + ["\n"])


# Every block the tests execute, translated once up front: 0x1000 has 3 instructions, ...
SIZES = {0x1000: 3, 0x1010: 2, 0x1100: 5, 0x2000: 7, 0x2010: 1, 0x3000: 4}
TRANSLATED = [l for pc, n in SIZES.items() for l in listing(pc, n)]


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
        log = TRANSLATED + [line(0, 0x2000), line(0, 0x9000)] + self.op() + self.op() + [
            line(0, 0x9000), line(0, 0x1000)]
        got = crossings.count(log, self.SYM, ["read"], 2)["read"]
        self.assertEqual(got.calls[("perf_read", "c")], 2)
        self.assertEqual(got.calls[("perf_event_ctx_lock", "rust")], 2)
        self.assertEqual(got.crossings, {("c", "rust", "perf_event_ctx_lock"): 2,
                                         ("rust", "helper", "rust_helper_x"): 2})
        table = crossings.table({"rust": {"read": got}})
        # Per op: perf_read 3 + 2, put_ctx_c 5, perf_event_ctx_lock 7 + 1, rust_helper_x 4.
        self.assertEqual(got.insns, {("perf_read", "c"): 10, ("put_ctx_c", "c"): 10,
                                     ("perf_event_ctx_lock", "rust"): 16,
                                     ("rust_helper_x", "helper"): 8})
        self.assertIn("| read | rust | 2.0 | 1.0 | 1.0 | 0.0 | 1.0 | 22.0 | 8.0 |", table)

    def test_insns_of_the_last_translation(self):
        # 0x1000 retranslated with 1 instruction (e.g. an icount budget cut) after its first
        # execution: later executions count 1.
        log = (TRANSLATED + [line(0, 0x9000), line(0, 0x1000)] + listing(0x1000, 1)
               + [line(0, 0x1000), line(0, 0x9000)])
        got = crossings.count(log, self.SYM, ["read"], 1)["read"]
        self.assertEqual(got.insns, {("perf_read", "c"): 4})

    def test_long_instruction_continues_on_a_line_of_bytes(self):
        # QEMU prints 8 bytes per line: a 10-byte movabs continues on a line of bytes only.
        listed = ["----------------\n", "IN: \n",
                  "0xffffffff81001000:  48 b8 00 00 00 00 04 00  movabsq  $0x1, %rax\n",
                  "0xffffffff81001008:  00 02\n",
                  "0xffffffff8100100a:  c3                       retq     \n", "\n"]
        sym = crossings.Symbols(start={0xffffffff81001000: ("f", "c")}, ranges=[],
                                marker=0x9000, sorted_starts=[0xffffffff81001000])
        log = listed + [line(0, 0x9000), line(0, 0xffffffff81001000), line(0, 0x9000)]
        got = crossings.count(log, sym, ["read"], 1)["read"]
        self.assertEqual(got.insns, {("f", "c"): 2})

    def test_a_cut_translation_keeps_its_own_cflags(self):
        # An icount cut retranslates 0x1000 with 1 instruction and other cflags, runs it once;
        # the cached full block (3 instructions) runs on afterwards.
        log = (TRANSLATED + [line(0, 0x9000), line(0, 0x1000)] + listing(0x1000, 1)
               + [line(0, 0x1000, "ff020001"), line(0, 0x1000), line(0, 0x9000)])
        got = crossings.count(log, self.SYM, ["read"], 1)["read"]
        self.assertEqual(got.insns, {("perf_read", "c"): 3 + 1 + 3})

    def test_blocks_without_translation_fail(self):
        with self.assertRaises(KhError) as e:
            crossings.count([line(0, 0x9000)] + self.op() + [line(0, 0x9000)], self.SYM,
                            ["read"], 1)
        self.assertIn("in_asm", str(e.exception))

    def test_insn_diff(self):
        c, r = crossings.Counts(2), crossings.Counts(2)
        c.insns.update({("perf_event_ctx_lock_nested", "c"): 40, ("put_ctx", "c"): 20})
        r.insns.update({("perf_event_ctx_lock", "rust"): 50, ("put_ctx", "rust"): 20})
        out = crossings.insn_diff({"c": {"read": c}, "rust": {"read": r}})
        self.assertIn("read: insns/op C 30.0, Rust 35.0 (+5.0)", out)
        self.assertIn("perf_event_ctx_lock +25.0, perf_event_ctx_lock_nested -20.0", out)
        self.assertNotIn("put_ctx", out)

    def test_other_cpu_is_not_the_caller(self):
        # CPU 1 in C between CPU 0's C block and its Rust call: still CPU 0's crossing;
        # CPU 1's own entry into Rust after a C block of CPU 0 is no crossing of CPU 1.
        log = TRANSLATED + [line(0, 0x9000), line(0, 0x1000), line(1, 0x1000), line(0, 0x2000),
               line(1, 0x1010), line(0, 0x9000)]
        got = crossings.count(log, self.SYM, ["read"], 1)["read"]
        self.assertEqual(got.crossings, {("c", "rust", "perf_event_ctx_lock"): 1})

    def test_markers_must_pair(self):
        with self.assertRaises(KhError):
            crossings.count(TRANSLATED + [line(0, 0x9000)] + self.op(), self.SYM, ["read"], 1)
        with self.assertRaises(KhError):
            crossings.count([line(0, 0x9000)] * 3, self.SYM, ["read"], 1)

    def test_dfilter_and_merge(self):
        self.assertEqual(crossings.merge([(0x100, 0x180), (0x1a0, 0x200), (0x1000, 0x1001)]),
                         [(0x100, 0x200), (0x1000, 0x1001)])
        self.assertEqual(crossings.dfilter(crossings.Symbols(ranges=[(0x100, 0x200)])),
                         "0x100..0x1ff")
