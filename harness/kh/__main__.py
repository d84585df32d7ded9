"""kh command line: `python3 -m kh <command>` (run from harness/, or via the Makefile)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

from . import (bench, bisect, build, crossings, gates, guest, hostcheck, parsers, rootfs, soak,
               suites, toolchain)
from . import stress as stressmod, tree as treemod
from .common import REPO, KhError, cache_dir, log, steps_line, took
from .suites import Report

# KUnit suites that must run on every kernel; the Rust core's own suites are found in the
# source with their case counts (suites.rust_kunit_suites()) and required on the Rust core.
KUNIT_REQUIRED = ["hw_breakpoint", "rust_doctests_kernel"]
TEST_PARTS = ["kunit", "kselftest", "stress", "perf-test", "smoke", "kmemleak"]
# The quick form of an arm64 run (QUICK=1, what CI runs next to x86_64's full run): boot,
# KUnit, kselftests and the main job's smoke run with the hardware events.
QUICK_PARTS = ["kunit", "kselftest", "smoke"]
# Parts an architecture leaves out of the full run. arm64: the stress part, whose kh-stress
# (cross-CPU perf_install_in_context() calls, migrations) stalls the guest under QEMU's
# icount mode: a CPU waits in smp_call_function_single() for minutes (RCU stall reports),
# on the C core as on the Rust core. x86_64 runs it.
SKIP_PARTS = {"x86_64": set(), "arm64": {"stress"}}
# The arm64 guest has a hardware PMU (QEMU's emulated PMUv3): the smoke run adds
# `perf stat -e cycles,instructions` of a loop of known length.
HW_PMU = {"x86_64": False, "arm64": True}
# arm64 CPU models and what their PMU does with config1 "long" events (arm_pmu's
# chained_events prints it): -cpu max has PMUv3p5, 64-bit event counters; a second, short
# boot on a Cortex-A57 (PMUv3, 32-bit counters) runs arm_pmu and the smoke run where the
# driver chains counter pairs.
ARM64_CPUS = [("max", "64-bit"), ("cortex-a57", "chained")]


def host_unit_tests() -> Report:
    rep = Report()
    loader = unittest.TestLoader()
    suite = loader.discover(str(REPO / "harness" / "tests"), top_level_dir=str(REPO / "harness"))

    class Collect(unittest.TestResult):
        def addSuccess(self, test):
            rep.ok(f"host/{test.id()}")

        def addFailure(self, test, err):
            rep.fail(f"host/{test.id()}", self._exc_info_to_string(err, test))

        def addError(self, test, err):
            rep.fail(f"host/{test.id()}", self._exc_info_to_string(err, test))

        def addSkip(self, test, reason):
            rep.fail(f"host/{test.id()}", f"skipped: {reason}")

    suite.run(Collect())
    if not rep.passed and not rep.failed:
        rep.fail("host/unit tests", "no host unit test was found")
    return rep


def prepare(profile: str, arch: str = "x86_64") -> tuple[Path, Path]:
    toolchain.install(arch=arch)
    guest.qemu_available(arch)
    t = treemod.materialise()
    odir = build.build(t, arch, profile)
    return t, odir


def arch_parts(arch: str, quick: bool = False) -> list[str]:
    """The guest parts of one run: the quick or the full list, less what the arch skips."""
    return [p for p in (QUICK_PARTS if quick else TEST_PARTS) if p not in SKIP_PARTS[arch]]


def run_name(name: str, arch: str) -> str:
    """Results and payload names: x86_64's stay as they were before arm64 came."""
    return name + rootfs.arch_suffix(arch)


def boot_with(profile: str, parts: list[str], name: str, *, timeout: int, live: bool,
              full: bool = False, arch: str = "x86_64", cpu: str = "max",
              env: dict | None = None, repeat: list[str] | None = None):
    t = treemod.tree_dir()
    img = rootfs.ensure_image(arch)
    env = dict(env or {}, **({"KH_HW_PMU": "1"} if HW_PMU[arch] else {}))
    payload = suites.make_payload(name, parts, tree=t, arch=arch, profile=profile, full=full,
                                  env=env, repeat=repeat)
    out = cache_dir() / "results" / name
    res = guest.boot(build.kernel_image(arch, profile), img, payload, out, timeout=timeout,
                     live=live, arch=arch, cpu=cpu)
    return res, out


def cpu_variant(profile: str, arch: str, cpu: str, kind: str, timeout: int):
    """The short boot on a second CPU model (arm_pmu and the smoke run): its report, with
    the smoke run and the long-event kind checked, and its sections."""
    res, out = boot_with(profile, ["kselftest", "smoke"], run_name(f"{profile}-{cpu}", arch),
                         timeout=timeout, live=False, arch=arch, cpu=cpu,
                         env={"KH_KSELFTESTS": "arm_pmu"})
    rep = Report()
    sections = guest_report(res, out, rep)
    rep.extend(suites.eval_smoke(sections, hw=True))
    rep.extend(suites.eval_long_events(sections, kind))
    return rep, sections


def guest_report(res, out: Path, rep: Report) -> dict:
    sections, done = parsers.parse_sections(res.results)
    splats = parsers.find_splats(res.console)
    if res.hang:
        open_ = [s for s in sections.values() if s.rc is None]
        rep.fail("guest/finished", res.hang + "; the console from the first stall report "
                 "or the last 200 lines (sysrq l, w, t were sent):\n"
                 + parsers.hang_evidence(res.console)
                 + "".join(f"\nthe unfinished section {s.name}'s output (its last 4000 "
                           f"characters):\n{s.text[-4000:]}" for s in open_))
    elif res.timed_out:
        rep.fail("guest/finished", "guest timed out; last console lines:\n"
                 + guest.tail(res.console) + "\nlast results lines:\n" + guest.tail(res.results))
    elif done is None:
        rep.fail("guest/finished", "guest did not finish its script; console tail:\n"
                 + guest.tail(res.console))
    else:
        rep.ok("guest/finished")
    if splats:
        rep.fail("guest/console clean (no oops, BUG, WARNING, lockdep, RCU, refcount)",
                 f"{len(splats)} reports; first:\n" + splats[0])
    else:
        rep.ok("guest/console clean (no oops, BUG, WARNING, lockdep, RCU, refcount)")
    log(f"guest logs: {out}/console.log, {out}/results.log")
    slow = sorted((s for s in sections.values() if s.seconds is not None),
                  key=lambda s: -s.seconds)[:8]
    if slow:
        log("slowest sections (guest seconds): "
            + ", ".join(f"{s.name} {s.seconds:.0f}" for s in slow))
    return sections


def print_report(rep: Report, title: str, trailer: str = "") -> None:
    print(f"\n===== {title} =====")
    groups: dict[str, list[int]] = {}
    for i, items in enumerate((rep.passed, [n for n, _ in rep.failed], [n for n, _ in rep.skipped])):
        for name in items:
            groups.setdefault(name.split("/", 1)[0], [0, 0, 0])[i] += 1
    for g, (p, f, s) in sorted(groups.items()):
        print(f"  {g:<16} {p:4d} passed {f:4d} failed {s:4d} skipped")
    for name, why in rep.skipped:
        print(f"SKIP {name}: {why}")
    for name, why in rep.failed:
        print(f"FAIL {name}:\n    " + why.replace("\n", "\n    "))
    if trailer:
        print(trailer)
    print(rep.summary())


class Beside:
    """Host work done in a thread, at a nice value of its own (Linux keeps one per thread,
    and what the thread starts inherits it), while the main thread builds or runs a guest;
    join() before what needs its result. Two uses in `make test` (README, the order of CI's
    run):
    - each guest image, from the start, beside the first kernel build, at the same priority:
      arm64's runs its packages' maintainer scripts under qemu-user, one core for 15 min and
      more, which at nice 19 waited for the end of the kernel build and then held up the
      first boot (2026-12-03, an empty cache: kernel built at 1734 s, image at 2576 s);
    - the next architecture's kernel and selftests at nice 19, from the end of the arm64
      kernel's build on, while the arm64 image is finished and its guest runs. That guest
      runs under `-icount shift=0,sleep=off`: one host thread (icount rules out
      multi-threaded TCG) and a clock that counts instructions, not host time, so a build
      beside it slows it down without changing what it sees, and the second core would
      idle otherwise. x86_64's guest, on real time, always runs with nothing beside it.
    A step that fails is logged; the main thread's own call of it fails properly."""

    def __init__(self, what: str, steps: list, nice: int = 19):
        self.what, self.steps, self.nice = what, steps, nice
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=what, daemon=True)

    def start(self) -> None:
        log(f"{self.what}: beside the main work, at nice {self.nice}")
        self.thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            tid = threading.get_native_id()
            if self.nice > os.getpriority(os.PRIO_PROCESS, tid):   # lowering it needs root
                os.setpriority(os.PRIO_PROCESS, tid, self.nice)
            for step in self.steps:
                step()
        except BaseException as e:
            self.error = e
        took(f"beside: {self.what}", time.monotonic() - t0)

    def join(self) -> None:
        if self.thread.ident is None:
            return
        if self.thread.is_alive():
            log(f"waiting for {self.what}")
        self.thread.join()
        if self.error is not None:
            log(f"{self.what} failed beside the main work ({self.error}); done again in order")


def next_arch_steps(arch: str, profile: str) -> list:
    """The kernel and selftests of `arch`, built ahead (its rootfs image is built already)."""
    def selftests():
        with tempfile.TemporaryDirectory() as tmp:
            suites.build_selftests(treemod.tree_dir(), arch, profile, Path(tmp))
    return [lambda: build.build(treemod.tree_dir(), arch, profile), selftests]


def test_arch(arch: str, args, rep: Report, image: Beside | None = None,
              ahead: Beside | None = None) -> None:
    """One architecture's run of `make test` (see README: Suites). Once its kernel is
    built, `ahead` (Beside) starts and `image`, its guest image, is waited for."""
    profile = "debug-rust"
    quick = args.quick and arch != "x86_64"
    t, odir = prepare(profile, arch)
    if ahead is not None:
        ahead.start()
    if image is not None:
        image.join()
    gates.symbols(odir, rep)
    part = suites.parse_part(args.part)
    base = suites.BASELINES / arch
    if part:
        test_part(arch, args, part, base, rep)
        return
    parts = arch_parts(arch, quick)
    ks_base = suites.load_baseline(base / "kselftest.tsv")
    pt_base = suites.load_baseline(base / ("perf-test-full.tsv" if args.full
                                           else "perf-test.tsv"))
    pt_repeat = suites.repeated_keys(pt_base) if "perf-test" in parts else []
    res, out = boot_with(profile, parts, run_name("test", arch), timeout=args.timeout,
                         live=False, full=args.full, arch=arch,
                         repeat=suites.repeated_keys(ks_base) + pt_repeat)
    sections = guest_report(res, out, rep)
    log(f"{arch} guest: {res.seconds:.0f}s under {res.accel}")
    rep.extend(suites.eval_kunit(sections, KUNIT_REQUIRED,
                                 suites.load_baseline(base / "kunit.tsv"),
                                 suites.rust_kunit_suites()))
    rep.extend(suites.compare_with_baseline(suites.kselftest_cases(sections), ks_base,
                                            "kselftest", suites.repeat_counts(sections)))
    if "perf-test" in parts:
        rep.extend(suites.compare_with_baseline(
            suites.perf_test_cases(sections), pt_base, "perf test",
            suites.perf_test_repeat_counts(sections, pt_repeat)))
    rep.extend(suites.eval_smoke(sections, hw=HW_PMU[arch]))
    if "stress" in parts:
        rep.extend(suites.eval_stress(sections))
    if "kmemleak" in parts:
        rep.extend(suites.eval_kmemleak(sections))
    if arch == "arm64":
        rep.extend(suites.eval_long_events(sections, ARM64_CPUS[0][1]))
        for cpu, kind in ARM64_CPUS[1:]:
            sub, sections = cpu_variant(profile, arch, cpu, kind, args.timeout)
            sub.extend(suites.compare_with_baseline(
                suites.kselftest_cases(sections),
                suites.load_baseline(base / f"kselftest-{cpu}.tsv"), "kselftest"))
            rep.extend(suites.prefixed(sub, cpu))
    if arch == "x86_64":
        gates.clippy(t, odir, rep)


def test_part(arch: str, args, part: tuple[int, int], base: Path, rep: Report) -> None:
    """`make test FULL=1 PART=k/N`: the Rust core's run of part k of the whole perf test
    list, alone in its guest, compared with that part of perf-test-full.tsv."""
    full = suites.load_baseline(base / "perf-test-full.tsv")
    pt_base = {k: v for k, v in full.items() if suites.in_perf_test_part(k, part)}
    repeat = suites.repeated_keys(pt_base)
    res, out = boot_with("debug-rust", ["perf-test"], run_name(f"test-part{part[0]}", arch),
                         timeout=args.timeout, live=False, full=True, arch=arch,
                         env={"KH_PART": f"{part[0]}/{part[1]}"}, repeat=repeat)
    sections = guest_report(res, out, rep)
    log(f"{arch} guest: {res.seconds:.0f}s under {res.accel}")
    if not pt_base:
        rep.fail(f"perf test part {part[0]}/{part[1]}", "no line of this part in "
                 f"{base / 'perf-test-full.tsv'}: run `make baseline FULL=1 PART="
                 f"{part[0]}/{part[1]}` first")
    rep.extend(suites.compare_with_baseline(suites.perf_test_cases(sections), pt_base,
                                            f"perf test part {part[0]}/{part[1]}",
                                            suites.perf_test_repeat_counts(sections, repeat)))


def cmd_test(args) -> int:
    t0 = time.monotonic()
    rep = Report()
    rep.extend(host_unit_tests())
    arches = parse_arches(args.arch)
    order = run_order(arches)
    for a in order:
        toolchain.install(arch=a)
    images = {a: Beside(f"the {a} guest image", [lambda a=a: rootfs.ensure_image(a)], nice=0)
              for a in order}
    for b in images.values():
        b.start()
    treemod.materialise()
    for i, arch in enumerate(order):
        ta = time.monotonic()
        sub = Report()
        nxt = order[i + 1] if i + 1 < len(order) else None
        ahead = (Beside(f"{nxt}'s kernel and selftests", next_arch_steps(nxt, "debug-rust"))
                 if nxt and arch == "arm64" and not args.part else None)
        try:
            test_arch(arch, args, sub, images[arch], ahead)
        finally:
            images[arch].join()
            if ahead is not None:
                ahead.join()
        # Case names carry the architecture when more than one runs.
        if len(arches) > 1:
            sub = suites.prefixed(sub, arch)
        rep.extend(sub)
        log(f"{arch}: {sub.summary()} ({time.monotonic() - ta:.0f}s)")
    tg = time.monotonic()
    t = treemod.tree_dir()
    gates.rustfmt(t, build.build_dir(arches[0], "debug-rust"), rep)
    pats = gates.exported_series(t, rep)
    gates.checkpatch(t, pats, rep)
    took("gates", time.monotonic() - tg)
    took("make test", time.monotonic() - t0)
    log(f"make test took {time.monotonic() - t0:.0f}s")
    print_report(rep, "summary", trailer=steps_line())
    return 0 if not rep.failed else 1


def run_order(arches: list[str]) -> list[str]:
    """The icount guests (arm64) first: the next architecture's kernel is built beside them
    (Beside). The order changes nothing else: each architecture has its own guest."""
    return sorted(arches, key=lambda a: a != "arm64")


def parse_arches(spec: str) -> list[str]:
    arches = [a.strip() for a in spec.split(",") if a.strip()]
    for a in arches:
        if a not in build.ARCHES:
            raise KhError(f"unknown ARCH {a!r}: use {', '.join(build.ARCHES)} or a "
                          "comma-separated list")
    return arches


def cmd_run(args) -> int:
    profile, arch = args.profile, args.arch
    prepare(profile, arch)
    res, out = boot_with(profile, ["smoke"], run_name("run", arch), timeout=args.timeout,
                         live=True, arch=arch)
    rep = Report()
    sections = guest_report(res, out, rep)
    rep.extend(suites.eval_smoke(sections, hw=HW_PMU[arch]))
    print_report(rep, "run")
    return 0 if not rep.failed else 1


def reread(name: str, arch: str):
    """The guest result of the last run called `name`, from its logs."""
    out = cache_dir() / "results" / name
    if not (out / "results.log").exists():
        raise KhError(f"REUSE=1: no earlier run's logs in {out}")
    secs = out / "guest-seconds"
    res = guest.GuestResult((out / "console.log").read_text(errors="replace"),
                            (out / "results.log").read_text(errors="replace"), 0, False,
                            float(secs.read_text()) if secs.exists() else 0.0,
                            "tcg icount" if arch == "arm64" else "tcg")
    log(f"re-reading the logs in {out}")
    return res, out


def baseline_full(args, profile: str, arch: str) -> int:
    """`make baseline FULL=1 [PART=k/N]`: the whole perf test list (or its part k) on the C
    core, alone in its guest; writes perf-test-full.tsv (a part replaces its own lines only).
    The other baselines are not touched: FULL changes the perf test part only."""
    part = suites.parse_part(args.part)
    base = suites.BASELINES / arch
    known = suites.load_baseline(base / "reasons.tsv")
    reasons = {k: v.reason for k, v in known.items()}
    # Tests that give either result on the C core: run REPEAT_N times more, compared by counts.
    repeat = suites.perf_test_repeats(known, part)
    name = run_name("baseline-full" + (f"-part{part[0]}" if part else ""), arch)
    if args.reuse:
        # That part's last run, read again (after a change of reasons.tsv or the parsers).
        res, out = reread(name, arch)
    else:
        prepare(profile, arch)
        env = {"KH_PART": f"{part[0]}/{part[1]}"} if part else {}
        res, out = boot_with(profile, ["perf-test"], name, timeout=args.timeout, live=False,
                             full=True, arch=arch, env=env, repeat=repeat)
        (out / "guest-seconds").write_text(f"{res.seconds:.0f}\n")
    rep = Report()
    sections = guest_report(res, out, rep)
    cases = suites.perf_test_cases(sections)
    repeats = suites.perf_test_repeat_counts(sections, repeat)
    missing = [k for k in repeat if k not in repeats]
    if missing:
        rep.fail("baseline/repeated cases", "not repeated: " + ", ".join(missing))
    if [n for n, _ in rep.failed if n == "guest/finished"] or not cases:
        print_report(rep, "baseline guest")
        print(f"baseline NOT written: the C core's run did not finish or ran no perf test "
              f"(logs in {out})")
        return 1
    day = time.strftime("%Y-%m-%d", time.localtime((out / "results.log").stat().st_mtime))
    hdr = (f"Results on the unpatched C core (CONFIG_PERF_EVENTS_RUST_CORE=n), {arch} QEMU "
           f"{res.accel}, profile {profile}, {day}, guest {res.seconds:.0f} s.\n"
           "Regenerate with `make baseline FULL=1"
           f"{' ARCH=' + arch if arch != 'x86_64' else ''}"
           f"{f' PART={part[0]}/{part[1]}' if part else ''}`.")
    suites.write_part_baseline(base / "perf-test-full.tsv", cases, hdr, reasons, part, repeats)
    print_report(rep, "baseline guest")
    print(f"{base / 'perf-test-full.tsv'}: {len(cases)} cases written"
          + (f" for part {part[0]}/{part[1]}" if part else ""))
    return 0 if not rep.failed else 1


def cmd_baseline(args) -> int:
    """Regenerates the C-core baselines (kselftests, perf test) in the same guest."""
    profile = "debug-c"
    arch = args.arch
    if arch not in build.ARCHES:
        raise KhError(f"make baseline takes one ARCH: {', '.join(build.ARCHES)}")
    if args.full:
        return baseline_full(args, profile, arch)
    parts = arch_parts(arch)
    base = suites.BASELINES / arch
    known = suites.load_baseline(base / "reasons.tsv")
    reasons = {k: v.reason for k, v in known.items()}
    # Cases that give either result on the C core: run REPEAT_N times, compared by counts.
    repeat = [k for k, v in known.items() if v.result == "repeat"
              and not k.startswith("perf-test/")]    # those: baseline_full()
    if args.reuse and arch != "x86_64":
        raise KhError("make baseline REUSE=1 re-reads x86_64's run only (arm64 has a second "
                      "boot)")
    if args.reuse:
        # The last baseline run's logs, read again (after a change of the parsers).
        res, out = reread(run_name("baseline", arch), arch)
    else:
        prepare(profile, arch)
        res, out = boot_with(profile, parts, run_name("baseline", arch),
                             timeout=args.timeout, live=False, full=args.full, arch=arch,
                             repeat=repeat)
    rep = Report()
    sections = guest_report(res, out, rep)
    if [n for n, _ in rep.failed if n == "guest/finished"]:
        # A run that hung or died has part of the results only: no baseline from it.
        print_report(rep, "baseline guest")
        print(f"baselines NOT written: the C core's run did not finish (logs in {out})")
        return 1
    rep.extend(suites.eval_smoke(sections, hw=HW_PMU[arch]))
    if "stress" in parts:
        rep.extend(suites.eval_stress(sections))
    rep.extend(suites.eval_kmemleak(sections))
    rep.extend(suites.eval_kunit(sections, KUNIT_REQUIRED,
                                 suites.load_baseline(base / "kunit.tsv")))
    hdr = (f"Results on the unpatched C core (CONFIG_PERF_EVENTS_RUST_CORE=n), {arch} "
           f"QEMU {res.accel}, profile {profile}.\nRegenerate with `make baseline"
           f"{' ARCH=' + arch if arch != 'x86_64' else ''}{' FULL=1' if args.full else ''}`. "
           "Reasons for non-passing cases come from reasons.tsv, else from the test's own "
           "output.")
    repeats = suites.repeat_counts(sections)
    missing = [k for k in repeat if k not in repeats]
    if missing:
        rep.fail("baseline/repeated cases", "not repeated: " + ", ".join(missing))
    suites.write_baseline(base / "kselftest.tsv", suites.kselftest_cases(sections), hdr, reasons,
                          repeats)
    # KUnit: only the cases that do not pass on the C core (the Rust core's own suites do not
    # exist there); every other case must pass.
    suites.write_baseline(base / "kunit.tsv",
                          [c for c in suites.kunit_cases(sections) if c.result != "pass"],
                          hdr + "\nKUnit: only the cases that do not pass; all others must.",
                          reasons)
    suites.write_baseline(base / ("perf-test-full.tsv" if args.full else "perf-test.tsv"),
                          suites.perf_test_cases(sections), hdr, reasons)
    if arch == "arm64":
        rep.extend(suites.eval_long_events(sections, ARM64_CPUS[0][1]))
        for cpu, kind in ARM64_CPUS[1:]:
            sub, sections = cpu_variant(profile, arch, cpu, kind, args.timeout)
            rep.extend(suites.prefixed(sub, cpu))
            suites.write_baseline(base / f"kselftest-{cpu}.tsv", suites.kselftest_cases(sections),
                                  hdr.replace("tcg icount", f"tcg icount -cpu {cpu}"), reasons)
    print_report(rep, "baseline guest")
    print(f"baselines written to {base}")
    return 0 if not rep.failed else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="kh", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    tc = sub.add_parser("toolchain", help="install/check the host toolchain")
    tc.add_argument("--all", action="store_true",
                    help="also the bench LLVM and the arm64 tools")
    sub.add_parser("hostcheck", help="the toolchain step on a minimal bookworm (chroot)")
    sub.add_parser("tree", help="materialise upstream + delta in the cache work tree")
    rf = sub.add_parser("refresh", help="copy commits of the work tree back into linux/ + patches/")
    rf.add_argument("--rev", default="HEAD", help="the commit to take (default: the work tree's HEAD)")
    arch_help = "x86_64 (default) or arm64 (cross-built, QEMU -M virt -cpu max)"
    b = sub.add_parser("build", help="build a kernel profile")
    b.add_argument("--profile", default="debug-rust")
    b.add_argument("--arch", default="x86_64", choices=build.ARCHES, help=arch_help)
    rfs = sub.add_parser("rootfs", help="build the guest root file system image")
    rfs.add_argument("--arch", default="x86_64", choices=build.ARCHES, help=arch_help)
    r = sub.add_parser("run", help="the main job: boot and run perf stat/record/report")
    r.add_argument("--profile", default="debug-rust")
    r.add_argument("--timeout", type=int, default=900)
    r.add_argument("--arch", default="x86_64", choices=build.ARCHES, help=arch_help)
    for name in ("test", "baseline"):
        s = sub.add_parser(name)
        s.add_argument("--full", action="store_true", help="every perf test, not the subset")
        s.add_argument("--part", default=None,
                       help="with --full: k/N, part k of the whole list in N (perf test "
                            "only, alone in its guest)")
        s.add_argument("--timeout", type=int, default=3600)
        s.add_argument("--arch", default="x86_64",
                       help=arch_help + ("; test: a comma-separated list runs each in turn"
                                         if name == "test" else ""))
        if name == "test":
            s.add_argument("--quick", action="store_true",
                           help="arm64: the quick form (boot, KUnit, kselftests, smoke)")
        else:
            s.add_argument("--reuse", action="store_true",
                           help="re-read the last baseline run's logs instead of booting")
    e = sub.add_parser("patches", help="export the delta as a git format-patch series")
    e.add_argument("--out", default=str(REPO / "out" / "series"))
    e.add_argument("--check", action="store_true",
                   help="git am the series onto pristine upstream and build every patch")
    e.add_argument("--from", dest="first", type=int, default=1,
                   help="with --check: build from this patch on (a re-check after a change "
                        "to the last patches)")
    sub.add_parser("unit", help="the harness's own unit tests")
    st = sub.add_parser("stress", help="long parallel load under KASAN, lockdep, kmemleak")
    st.add_argument("--minutes", type=int, default=30)
    st.add_argument("--core", choices=["rust", "c"], default="rust")
    st.add_argument("--kind", choices=["stress", "kcsan", "debug"], default="stress",
                    help="kernel profile kind: stress (KASAN), kcsan (KCSAN, compared "
                    "with the other core's kcsan run) or debug (quicker to build)")
    sc = sub.add_parser("stress-selfcheck",
                        help="fire each detector make stress counts once (LKDTM)")
    sc.add_argument("--core", choices=["rust", "c"], default="rust")
    sc.add_argument("--boots", default="", help="comma-separated subset of "
                    + ",".join(stressmod.SELFCHECK) + " (default: all)")
    sk = sub.add_parser("soak", help="the same guest run N times (hangs, failures)")
    sk.add_argument("--profile", default="debug-rust")
    sk.add_argument("--arch", default="arm64", choices=build.ARCHES)
    sk.add_argument("--n", type=int, default=20)
    sk.add_argument("--parts", default=",".join(QUICK_PARTS))
    sk.add_argument("--load", type=int, default=0, help="CPU-bound host processes meanwhile")
    cr = sub.add_parser("crossings", help="calls and C<->Rust crossings per operation")
    cr.add_argument("--profile", choices=["bench", "debug"], default="bench")
    cr.add_argument("--ops", type=int, default=200)
    bn = sub.add_parser("bench", help="the Rust core against the C core, as ratios")
    bn.add_argument("--rounds", type=int, default=10)
    bn.add_argument("--modes", default="icount,wall", help="icount and/or wall, comma-separated")
    args = p.parse_args(argv)
    # `make test ARCH=arm64` puts ARCH into the environment and MAKEFLAGS of every make we
    # start: the kernel and selftest builds get their ARCH from us, explicitly, instead.
    for k in ("ARCH", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL"):
        os.environ.pop(k, None)
    try:
        if args.cmd == "toolchain":
            if args.all:
                toolchain.install(bench=True, arch="arm64")
            else:
                toolchain.install()
        elif args.cmd == "hostcheck":
            return hostcheck.run_check()
        elif args.cmd == "tree":
            print(treemod.materialise())
        elif args.cmd == "refresh":
            treemod.refresh(args.rev)
        elif args.cmd == "build":
            toolchain.install(bench=args.profile.startswith("bench"), arch=args.arch)
            build.build(treemod.materialise(), args.arch, args.profile)
        elif args.cmd == "rootfs":
            # (arm64's needs qemu-user-static: on a new machine `make rootfs ARCH=arm64`
            # was the first to ask for it.)
            toolchain.install(arch=args.arch)
            print(rootfs.ensure_image(args.arch))
        elif args.cmd == "run":
            return cmd_run(args)
        elif args.cmd in ("test", "baseline") and args.part and not args.full:
            raise KhError("PART= is a part of the whole perf test list: give FULL=1 too")
        elif args.cmd == "test":
            return cmd_test(args)
        elif args.cmd == "baseline":
            return cmd_baseline(args)
        elif args.cmd == "patches":
            pats = treemod.export(Path(args.out))
            ok, msg = treemod.check_export_applies(pats)
            print(msg)
            if ok and args.check:
                toolchain.install()
                return bisect.check(pats, first=args.first)
            return 0 if ok else 1
        elif args.cmd == "soak":
            toolchain.install(arch=args.arch)
            prepare(args.profile, args.arch)
            return soak.run(args.profile, args.arch, args.n, args.parts.split(","), args.load)
        elif args.cmd == "crossings":
            toolchain.install(bench=args.profile == "bench")
            guest.qemu_available()
            return crossings.main(treemod.materialise(), args.profile, args.ops)
        elif args.cmd == "bench":
            toolchain.install(bench=True)
            guest.qemu_available()
            return bench.run(treemod.materialise(), args.rounds, args.modes.split(","))
        elif args.cmd == "stress":
            toolchain.install()
            guest.qemu_available()
            return stressmod.run(treemod.materialise(), args.minutes, args.core, args.kind)
        elif args.cmd == "stress-selfcheck":
            toolchain.install()
            guest.qemu_available()
            boots = [b for b in args.boots.split(",") if b]
            bad = [b for b in boots if b not in stressmod.SELFCHECK]
            if bad:
                raise KhError(f"unknown selfcheck boot(s) {', '.join(bad)}: want "
                              + ", ".join(stressmod.SELFCHECK))
            return stressmod.selfcheck(treemod.materialise(), args.core, boots)
        elif args.cmd == "unit":
            rep = host_unit_tests()
            print_report(rep, "host unit tests")
            return 0 if not rep.failed else 1
    except KhError as e:
        print(f"kh: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
