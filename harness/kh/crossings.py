"""`make crossings`: which functions of the perf core one operation calls, and how often it
crosses between C and Rust, counted in the guest, on both cores (issue 17's first step).

A kernel of each core (the bench profile by default) boots under TCG with QEMU's execution
log (`-d exec,nochain`) restricted (`-dfilter`) to the text of the perf core's objects
(kernel/events/*.o, the Rust crate, rust/helpers) and of one marker function,
`__x64_sys_sched_get_priority_min` (a syscall nothing else here makes). guest/crossings.sh
runs each kh-bench workload for N operations with `KH_BENCH_MARK=1`: kh-bench calls
sched_get_priority_min() just before the first and just after the last operation, so the
log between two marker entries is those N operations.

With chaining off every executed translation block is logged, and a call always starts a
new block, so a block that starts at a function's first address is one call of it (a
branch back to a function's first instruction would count too; none of ours has one). A
crossing is a call whose callee is in one language and whose caller, the previous logged
block of the same vCPU, in the other: C (kernel/events) -> Rust, Rust -> C, Rust -> a
rust_helper_* that was not inlined. Code outside the filter (mutex_lock, kmalloc, ...) is
not logged: a call that leaves through it and comes back is not a crossing. The counts are
per operation (the total over N): a tick or an interrupt that ran perf code meanwhile shows
as a fraction.

Instructions: the log also has `-d in_asm`, which QEMU writes once per translation of a
block (restricted by the same filter): the number of guest instructions of the block that
starts at a pc. Every logged execution of a block adds the instructions of the last
translation of its pc to the function the block is in, so each workload also gets the
instructions it executed per operation in the perf core's text, per function and per
language (not the whole syscall: mutex_lock, kmalloc and the rest are outside the filter).
"""

from __future__ import annotations

import bisect
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import bench, build, guest, parsers, rootfs, suites
from .common import KhError, cache_dir, log, run, versions

ARCH = "x86_64"
WORKLOADS = ["open-task", "open-cpu-local", "open-group4", "read", "enable-disable",
             "fork-inherit", "exec", "ctx-swap", "multiplex"]
MARKER = "__x64_sys_sched_get_priority_min"
BATCH = 50                     # guest/src/kh-bench.c's BATCH
# The objects whose text is logged, and the language each counts as.
OBJECTS = {"kernel/events/rust_core/perf_rust_core.o": "rust",
           "rust/helpers/helpers.o": "helper"}
EVENTS_DIR = "kernel/events"

# The crossings counted: (caller's language, callee's). A helper is C, so helper -> C is not
# one (it shows when an RCU callback that a helper queued runs C).
CROSSINGS = {("c", "rust"), ("rust", "c"), ("rust", "helper")}
# QEMU 7.2's CPU_LOG_EXEC line: "Trace <cpu>: <host ptr> [<cs_base>/<pc>/<flags>/<cflags>] ..."
TRACE_RE = re.compile(r"^Trace (\d+): (?:0x)?[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/([0-9a-f]+)\]")
# -d in_asm: "IN: <symbol>", then one "0x<pc>:  <bytes>  <insn>" line per guest instruction,
# then a blank line. An instruction longer than 8 bytes continues on a line of bytes only,
# which is not an instruction.
IN_RE = re.compile(r"^IN:")
INSN_RE = re.compile(r"^0x([0-9a-f]+):\s+(.*)$")
BYTE_RE = re.compile(r"[0-9a-f]{2}")


@dataclass
class Symbols:
    """The text symbols of vmlinux that belong to the logged objects: start address ->
    (name, language), and the address ranges to log."""
    start: dict[int, tuple[str, str]] = field(default_factory=dict)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    marker: int = 0
    sorted_starts: list[int] = field(default_factory=list)


def llvm_tool(name: str) -> str:
    """The pinned LLVM's tool (toolchain.HOST_COMMANDS_LLVM): `llvm-nm-19`, not whatever
    `llvm-nm` the host may or may not have."""
    return f"{name}{versions()['toolchain']['llvm']}"


def _nm(path: Path, *flags: str) -> list[list[str]]:
    out = run([llvm_tool("llvm-nm"), "--defined-only", *flags, str(path)], capture=True, quiet=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def object_languages(odir: Path) -> dict[Path, str]:
    """The logged objects of a build: every kernel/events/*.o (C), the Rust crate and
    rust/helpers (when the build has them)."""
    objs = {p: "c" for p in sorted((odir / EVENTS_DIR).glob("*.o"))
            if p.name not in ("built-in.o",)}
    for rel, lang in OBJECTS.items():
        if (odir / rel).exists():
            objs[odir / rel] = lang
    if not objs:
        raise KhError(f"no objects under {odir / EVENTS_DIR}: is {odir} built?")
    return objs


def symbols(odir: Path) -> Symbols:
    """Text symbols of vmlinux (address, size, name) attributed to the logged objects by
    name; a name that several objects define (static functions) is attributed by address:
    the candidate nearest the object's other symbols."""
    rows = _nm(odir / "vmlinux", "-S", "-n")
    by_name: dict[str, list[tuple[int, int]]] = {}
    marker = 0
    for r in rows:
        if len(r) == 4 and r[2] in "tTwW":
            addr, size, name = int(r[0], 16), int(r[1], 16), r[3]
            by_name.setdefault(name, []).append((addr, size))
            if name == MARKER:
                marker = addr
    if not marker:
        raise KhError(f"{MARKER} not in {odir / 'vmlinux'}")
    sym = Symbols(marker=marker)
    for obj, lang in object_languages(odir).items():
        names = [r[-1] for r in _nm(obj) if len(r) >= 2 and r[-2] in "tTwW"]
        found = [by_name[n] for n in names if n in by_name]
        if not found:
            continue
        single = sorted(c[0][0] for c in found if len(c) == 1)
        centre = single[len(single) // 2] if single else found[0][0][0]
        for n in names:
            cands = by_name.get(n)
            if not cands:
                continue
            addr, size = min(cands, key=lambda c: abs(c[0] - centre))
            sym.start[addr] = (n, lang)
            sym.ranges.append((addr, addr + max(size, 1)))
    sym.ranges.append((marker, marker + 1))
    sym.ranges = merge(sym.ranges)
    sym.sorted_starts = sorted(sym.start)
    return sym


def merge(ranges: list[tuple[int, int]], gap: int = 64) -> list[tuple[int, int]]:
    """Sorted, overlapping or nearly adjacent ranges joined (padding between functions)."""
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def language_of(sym: Symbols, pc: int, cache: dict[int, str]) -> str:
    """The language of the function a block address is in (by the nearest start below)."""
    if pc not in cache:
        i = bisect.bisect_right(sym.sorted_starts, pc) - 1
        cache[pc] = sym.start[sym.sorted_starts[i]][1] if i >= 0 else "?"
    return cache[pc]


def function_of(sym: Symbols, pc: int, cache: dict[int, tuple[str, str]]) -> tuple[str, str]:
    """(name, language) of the function a block address is in (the nearest start below)."""
    if pc not in cache:
        i = bisect.bisect_right(sym.sorted_starts, pc) - 1
        cache[pc] = sym.start[sym.sorted_starts[i]] if i >= 0 else ("?", "?")
    return cache[pc]


@dataclass
class Counts:
    """One workload's calls and crossings, totals over its N operations."""
    ops: int
    calls: Counter = field(default_factory=Counter)        # (name, lang) -> calls
    crossings: Counter = field(default_factory=Counter)    # (from lang, to lang, callee)
    insns: Counter = field(default_factory=Counter)        # (name, lang) -> instructions
    blocks: int = 0            # executed blocks
    untranslated: int = 0      # executed blocks whose translation the log did not show


def count(log_lines, sym: Symbols, workloads: list[str], ops: int) -> dict[str, Counts]:
    """Splits the log at the marker's entries (two per workload, in order) and counts each
    workload's calls and crossings between its two markers."""
    out: dict[str, Counts] = {}
    marks = 0
    cur: Counts | None = None
    prev: dict[str, str] = {}
    cache: dict[int, str] = {}
    fcache: dict[int, tuple[str, str]] = {}
    # (block pc, cflags) -> instructions of its last translation. A block is translated again
    # with other cflags (e.g. cut short at the end of an icount budget) while the cached one
    # stays valid, so a listing belongs to the cflags of the first execution of its pc after
    # it, which is that translation's (QEMU runs a block right after translating it).
    tb_size: dict[tuple[int, str], int] = {}
    pending: dict[int, int] = {}    # pc -> size of a listing not executed yet
    tb_pc: int | None = None        # the block being read from an in_asm listing
    in_listing = False
    for line in log_lines:
        if in_listing:
            mi = INSN_RE.match(line)
            if mi:
                if tb_pc is None:
                    tb_pc = int(mi.group(1), 16)
                    pending[tb_pc] = 0
                if not all(BYTE_RE.fullmatch(t) for t in mi.group(2).split()):
                    pending[tb_pc] += 1
                continue
            if not line.strip():
                in_listing = False
                continue
        if IN_RE.match(line):
            in_listing, tb_pc = True, None
            continue
        m = TRACE_RE.match(line)
        if not m:
            continue
        cpu, pc, cflags = m.group(1), int(m.group(2), 16), m.group(3)
        if pc in pending:
            tb_size[(pc, cflags)] = pending.pop(pc)
        if pc == sym.marker:
            marks += 1
            if marks > 2 * len(workloads):
                raise KhError(f"more than {2 * len(workloads)} calls of {MARKER} in the log: "
                              "something else called sched_get_priority_min() during the run")
            if marks % 2 == 1:
                cur = out.setdefault(workloads[marks // 2], Counts(ops))
            else:
                cur = None
            prev = {}
            continue
        lang = language_of(sym, pc, cache)
        if cur is not None:
            cur.blocks += 1
            size = tb_size.get((pc, cflags))
            if size is None:
                cur.untranslated += 1
            else:
                cur.insns[function_of(sym, pc, fcache)] += size
        if cur is not None and pc in sym.start:
            name, lang = sym.start[pc]
            cur.calls[(name, lang)] += 1
            before = prev.get(cpu)
            if (before, lang) in CROSSINGS:
                cur.crossings[(before, lang, name)] += 1
        prev[cpu] = lang
    for w, c in out.items():
        if c.untranslated > 0.01 * c.blocks:
            raise KhError(f"{w}: {c.untranslated} executed blocks without their in_asm "
                          "translation in the log: is -d in_asm on?")
    if marks != 2 * len(workloads):
        raise KhError(f"{marks} calls of {MARKER} in the log, {2 * len(workloads)} expected "
                      "(two per workload): the guest's run did not finish")
    return out


def dfilter(sym: Symbols) -> str:
    return ",".join(f"0x{a:x}..0x{b - 1:x}" for a, b in sym.ranges)


def table(per_core: dict[str, dict[str, Counts]]) -> str:
    """Per workload and core: calls per operation into C (kernel/events) and Rust, and the
    crossings per operation by direction."""
    lines = ["| workload | core | C calls/op | Rust calls/op | C->Rust /op | Rust->C /op | "
             "Rust->helper /op | insns/op | of them Rust |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in WORKLOADS:
        for core in ("c", "rust"):
            c = per_core.get(core, {}).get(w)
            if c is None:
                continue
            by_lang = Counter()
            for (_, lang), n in c.calls.items():
                by_lang[lang] += n
            dirs = Counter()
            for (a, b, _), n in c.crossings.items():
                dirs[(a, b)] += n
            lines.append(f"| {w} | {core} | {by_lang['c'] / c.ops:.1f} | "
                         f"{by_lang['rust'] / c.ops:.1f} | {dirs[('c', 'rust')] / c.ops:.1f} | "
                         f"{dirs[('rust', 'c')] / c.ops:.1f} | "
                         f"{dirs[('rust', 'helper')] / c.ops:.1f} | "
                         f"{sum(c.insns.values()) / c.ops:.1f} | "
                         f"{sum(n for (_, lang), n in c.insns.items() if lang == 'rust') / c.ops:.1f} |")
    return "\n".join(lines)


def insn_diff(per_core: dict[str, dict[str, Counts]], top: int = 8) -> str:
    """Per workload: instructions per operation in the logged text on each core, and the
    functions whose instructions per operation differ most between the cores."""
    out = []
    names = {n for d in per_core.values() for c in d.values() for (n, _) in c.insns}
    dm = demangle(names)
    for w in WORKLOADS:
        c, r = per_core.get("c", {}).get(w), per_core.get("rust", {}).get(w)
        if c is None or r is None:
            continue
        tc, tr = sum(c.insns.values()) / c.ops, sum(r.insns.values()) / r.ops
        per_fn = Counter()
        for (n, _), v in r.insns.items():
            per_fn[n] += v / r.ops
        for (n, _), v in c.insns.items():
            per_fn[n] -= v / c.ops
        diffs = sorted(((v, n) for n, v in per_fn.items() if abs(v) >= 0.5),
                       key=lambda t: -abs(t[0]))[:top]
        out.append(f"{w}: insns/op C {tc:.1f}, Rust {tr:.1f} ({tr - tc:+.1f}); by function "
                   "(Rust - C): " + (", ".join(f"{dm.get(n, n)} {v:+.1f}" for v, n in diffs)
                                     or "none"))
    return "\n".join(out)


def demangle(names) -> dict[str, str]:
    """Rust symbol names (v0 mangling, `_R...`) demangled by llvm-cxxfilt, generic
    arguments dropped; other names as they are."""
    rust = sorted({n for n in names if n.startswith("_R")})
    if not rust:
        return {}
    out = run([llvm_tool("llvm-cxxfilt")], input="\n".join(rust) + "\n", capture=True,
              quiet=True).stdout.splitlines()
    return {m: re.sub(r"::<.*>$", "", d) for m, d in zip(rust, out)}


def details(per_core: dict[str, dict[str, Counts]], min_per_op: float = 0.5,
            calls: bool = False) -> str:
    """Each workload's crossings (callee, per operation) and, with `calls`, every function
    it calls at least `min_per_op` times per operation."""
    names = {n for d in per_core.values() for c in d.values() for (n, _) in c.calls}
    names |= {n for d in per_core.values() for c in d.values() for (n, _) in c.insns}
    dm = demangle(names)
    out = []
    for w in WORKLOADS:
        for core in ("c", "rust"):
            c = per_core.get(core, {}).get(w)
            if c is None:
                continue
            cross = ", ".join(f"{a}->{b} {dm.get(name, name)} {n / c.ops:.1f}"
                              for (a, b, name), n in c.crossings.most_common()
                              if n / c.ops >= min_per_op) or "none"
            out.append(f"{w} ({core}): crossings: {cross}")
            if calls:
                out.append("    insns: " + ", ".join(
                    f"{dm.get(name, name)} ({lang}) {n / c.ops:.1f}"
                    for (name, lang), n in c.insns.most_common() if n / c.ops >= min_per_op))
                out.append("    calls: " + ", ".join(
                    f"{dm.get(name, name)} ({lang}) {n / c.ops:.1f}"
                    for (name, lang), n in c.calls.most_common() if n / c.ops >= min_per_op))
    return "\n".join(out)


def run_core(core: str, profile: str, ops: int, img: Path) -> dict[str, Counts]:
    odir = build.build_dir(ARCH, profile)
    sym = symbols(odir)
    payload = suites.make_payload(f"crossings-{core}", ["crossings"],
                                  env={"KH_CROSS_N": str(ops),
                                       "KH_CROSS_WORKLOADS": "'" + " ".join(WORKLOADS) + "'"})
    out = cache_dir() / "results" / f"crossings-{profile}"
    trace = out / "exec.log"
    out.mkdir(parents=True, exist_ok=True)
    trace.unlink(missing_ok=True)
    res = guest.boot(build.kernel_image(ARCH, profile), img, payload, out, timeout=1800,
                     icount=True, quiet_kvm=True, cmdline=bench.BENCH_CMDLINE,
                     qemu_extra=["-d", "exec,nochain,in_asm", "-dfilter", dfilter(sym), "-D", str(trace)])
    sections, _ = parsers.parse_sections(res.results)
    sec = sections.get("crossings")
    if res.hang or res.timed_out or sec is None or sec.rc != 0:
        raise KhError(f"crossings run ({profile}) failed: "
                      f"{res.hang or ('timed out' if res.timed_out else '')} "
                      f"section {'missing' if sec is None else f'rc={sec.rc}'}; see {out}")
    splats = parsers.find_splats(res.console)
    if splats:
        raise KhError(f"crossings run ({profile}): {len(splats)} console reports; first:\n"
                      + splats[0])
    with open(trace, errors="replace") as f:
        counts = count(f, sym, WORKLOADS, ops)
    log(f"{profile}: {trace.stat().st_size // 1024} KiB of execution log, "
        f"{len(sym.ranges)} address ranges")
    return counts


def main(tree: Path, profile: str, ops: int) -> int:
    if ops < BATCH or ops % BATCH:
        raise KhError(f"N={ops}: kh-bench runs whole batches of {BATCH} operations; give a "
                      f"multiple of {BATCH}")
    per_core = {}
    img = rootfs.ensure_image()
    for core in ("c", "rust"):
        build.build(tree, ARCH, f"{profile}-{core}")
    for core in ("c", "rust"):
        per_core[core] = run_core(core, f"{profile}-{core}", ops, img)
    outdir = cache_dir() / "crossings" / time.strftime("%Y%m%d-%H%M%S")
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "counts.json").write_text(json.dumps(
        {core: {w: {"ops": c.ops,
                    "calls": {f"{n}\t{lang}": v for (n, lang), v in c.calls.items()},
                    "crossings": {f"{a}\t{b}\t{n}": v for (a, b, n), v in c.crossings.items()},
                    "insns": {f"{n}\t{lang}": v for (n, lang), v in c.insns.items()}}
                for w, c in d.items()} for core, d in per_core.items()}, indent=1))
    (outdir / "calls.txt").write_text(details(per_core, calls=True) + "\n")
    print(table(per_core))
    print()
    print(details(per_core))
    print()
    print(insn_diff(per_core))
    print(f"\ncrossings: {len(WORKLOADS)} workloads, {ops} operations each, profiles "
          f"{profile}-c and {profile}-rust; counts in {outdir} (counts.json; calls.txt: every "
          f"function called per operation)")
    return 0
